"""Fetching a finished video once and describing it to the platform port.

Invariants:
- A video is downloaded at most once per job: a file already in MEDIA_DIR with the recorded
  size is reused (after a crash between the download and the post), never fetched again.
- Downloads stream to disk (bot/infra/evolink.py), at most `parallel` at a time.
- EvoLink's own result link lives `RESULT_LINK_LIFETIME` from the task's completion; every
  `DeliveredVideo` says until when, so a port never posts a link it knows to be dead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from pathlib import Path

from bot.domain.models import DeliveredVideo, Job
from bot.infra.evolink import EvoLinkClient
from bot.infra.media import MediaHost
from bot.services.jobs import JobBook

RESULT_LINK_LIFETIME = dt.timedelta(hours=24)


class VideoFetcher:
    def __init__(
        self,
        book: JobBook,
        evolink: EvoLinkClient,
        media: MediaHost,
        stats: Counter[str],
        *,
        parallel: int = 4,
    ) -> None:
        self.book = book
        self.evolink = evolink
        self.media = media
        self.stats = stats
        self._downloads = asyncio.Semaphore(parallel)

    async def fetch(self, job: Job) -> DeliveredVideo:
        """The job's video on disk (downloaded now, or kept from before a crash).

        Raises ProviderError when EvoLink will not serve it, OSError when it cannot be saved.
        """
        path = self.media.video_path(job.id)
        if not (job.media_path and path.is_file() and path.stat().st_size == job.media_size):
            assert job.result_url is not None
            async with self._downloads:
                size = await self.evolink.download(job.result_url, path)
            self.stats["downloads"] += 1
            await self.book.record_media(job.id, str(path), size)
        return DeliveredVideo(
            job_id=job.id,
            path=str(path),
            size=path.stat().st_size,
            filename=filename_for(job, path),
            hosted_url=self.media.url_for(path),
            source_url=job.result_url,
            source_expires_at=_link_expiry(job),
        )

    def link_only(self, job: Job) -> DeliveredVideo:
        """EvoLink's own link, for when the video cannot be kept (MEDIA_DIR stays full)."""
        return DeliveredVideo(
            job_id=job.id,
            path=None,
            size=0,
            filename=filename_for(job, self.media.video_path(job.id)),
            source_url=job.result_url,
            source_expires_at=_link_expiry(job),
        )


def _link_expiry(job: Job) -> dt.datetime:
    return (job.completed_at or dt.datetime.now(dt.UTC)) + RESULT_LINK_LIFETIME


def filename_for(job: Job, path: Path) -> str:
    """A readable file name that carries the job id's tail (ports find earlier posts by it)."""
    words = "".join(c if c.isalnum() else "-" for c in job.request.prompt.lower()[:40]).strip("-")
    while "--" in words:
        words = words.replace("--", "-")
    return f"sora-{words or 'video'}-{job.id[-6:]}{path.suffix}"
