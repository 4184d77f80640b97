"""Make the EvoLink simulator's result clips: bot/data/clips/<orientation>-<seconds>s.mp4.

    pip install imageio-ffmpeg          # only to run this script; not a dependency of the bot
    python scripts/make_demo_clips.py   # rewrites bot/data/clips/, prints each file's size

One clip per orientation (landscape 160x90, portrait 90x160, square 120x120) and per length in
`bot.infra.simulator.world.CLIP_SECONDS`: SMPTE colour bars with a white bar sweeping from left
to right over the clip's whole length (so a player shows time passing), 4 frames per second,
H.264 (yuv420p, +faststart), and a mono AAC track that opens with a 0.4 s 880 Hz tone and is
silent after it (so players show an audio track and the sound is short). Everything is
`bitexact` and metadata-free, so running the script again with the same ffmpeg gives the same
bytes. The whole set stays a few hundred KB (the script refuses to write more than `BUDGET`).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.infra.simulator.world import CLIP_SECONDS, clip_name  # noqa: E402

OUT = ROOT / "bot" / "data" / "clips"
SIZES = {"landscape": (160, 90), "portrait": (90, 160), "square": (120, 120)}
FPS = 4
TONE_SECONDS = 0.4
BUDGET = 400 * 1024  # bytes, every clip together


def ffmpeg() -> str:
    try:
        import imageio_ffmpeg  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        raise SystemExit("pip install imageio-ffmpeg first (it ships an ffmpeg binary)") from None
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def command(exe: str, width: int, height: int, seconds: int, out: Path) -> list[str]:
    bar = max(2, width // 10) // 2 * 2
    sweep = f"overlay=x='t/{seconds}*{width - bar}':y=0:shortest=1"
    tone = f"sine=frequency=880:sample_rate=16000:duration={TONE_SECONDS}"
    return [
        exe,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"smptebars=size={width}x{height}:rate={FPS}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"color=c=white:size={bar}x{height}:rate={FPS}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        tone,
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=16000:cl=mono",
        "-filter_complex",
        f"[0][1]{sweep}[v];[2][3]concat=n=2:v=0:a=1,atrim=duration={seconds}[a]",
        "-map",
        "[v]",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "veryslow",
        "-crf",
        "36",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "12k",
        "-ac",
        "1",
        "-ar",
        "16000",
        "-movflags",
        "+faststart",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        str(out),
    ]


def main() -> int:
    exe = ffmpeg()
    made: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for orientation, (width, height) in SIZES.items():
            for seconds in CLIP_SECONDS:
                name = clip_name(orientation, seconds)
                out = Path(tmp) / name
                subprocess.run(command(exe, width, height, seconds, out), check=True)
                made[name] = out.read_bytes()
    total = sum(len(data) for data in made.values())
    if total > BUDGET:
        raise SystemExit(f"the clips would take {total} bytes, more than {BUDGET}: not written")
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.mp4"):
        if old.name not in made:
            old.unlink()
    for name, data in made.items():
        (OUT / name).write_bytes(data)
        print(f"{name:>24} {len(data):>7} bytes")
    print(f"{'all':>24} {total:>7} bytes in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
