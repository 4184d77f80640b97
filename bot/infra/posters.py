"""Poster frames: one JPEG per video, extracted once with PyAV and kept next to the video.

    poster_path(video)   MEDIA_DIR/<job id>.poster.jpg (next to MEDIA_DIR/<job id>.mp4)
    Posters.poster(video) → Path | None   the poster, made on the first call, reused after

Invariants:
- A poster is extracted at most once per video and process at a time (a per-file lock), and
  not again once its file exists: later views read the saved JPEG.
- It is written to a temporary name and renamed into place, so a reader (another replica on
  the shared MEDIA_DIR) never sees half a JPEG.
- The frame is the first keyframe at or after ~1 s, else the first decoded frame; the JPEG is
  at most 640 px wide.
- A file PyAV cannot read (or with no video frame) gives None — the page shows a placeholder —
  and never raises: a bad file is logged by name, not served as a 500.
- Only files inside the media directory are read (the caller resolves and checks the path).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

POSTER_SUFFIX = ".poster.jpg"
SEEK_SECONDS = 1.0
MAX_WIDTH = 640


def poster_path(video: Path) -> Path:
    return video.with_name(video.stem + POSTER_SUFFIX)


def extract(video: Path, target: Path) -> bool:
    """Write the poster of `video` to `target` (JPEG); False when no frame can be read."""
    import av  # PyAV, with its own ffmpeg: imported only where a poster is made

    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                return False
            stream = container.streams.video[0]
            frame = None
            if stream.time_base is not None:
                try:
                    container.seek(int(SEEK_SECONDS / stream.time_base), stream=stream)
                    frame = next(container.decode(stream), None)
                except (av.error.FFmpegError, StopIteration):
                    frame = None
            if frame is None:
                container.seek(0)
                frame = next(container.decode(stream), None)
            if frame is None:
                return False
            image = frame.to_image()  # type: ignore[no-untyped-call]
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.warning("no poster for %s: PyAV cannot read it (%s)", video.name, exc)
        return False
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, max(1, image.height * MAX_WIDTH // image.width)))
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        image.convert("RGB").save(partial, format="JPEG", quality=82)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return True


class Posters:
    """Makes each video's poster once and hands out the saved file afterwards."""

    def __init__(self) -> None:
        self._locks: dict[Path, asyncio.Lock] = {}
        #: Videos PyAV could not read in this process: not tried again on every view.
        self._unreadable: set[Path] = set()
        #: How many extractions this process ran (tests: a second view extracts nothing).
        self.extractions = 0

    async def poster(self, video: Path) -> Path | None:
        target = poster_path(video)
        if video in self._unreadable:
            return None
        lock = self._locks.setdefault(target, asyncio.Lock())
        try:
            async with lock:
                return await asyncio.to_thread(self._made, video, target)
        finally:
            if not lock.locked():
                self._locks.pop(target, None)

    def _made(self, video: Path, target: Path) -> Path | None:
        """The saved poster, else one extracted now (in a worker thread)."""
        if target.is_file():
            return target
        if not video.is_file():
            return None
        self.extractions += 1
        if extract(video, target):
            return target
        self._unreadable.add(video)
        return None
