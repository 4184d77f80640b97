"""The gallery's files, over real HTTP: the player's ranges (206, Content-Range, the file's own
bytes), nothing outside MEDIA_DIR (a job row pointing elsewhere, a symlink out), videos past
MEDIA_RETENTION_DAYS or gone shown as expired, posters extracted once and a placeholder for a
file PyAV cannot read. Job rows are changed through the store's SQL (both engines)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import Job
from bot.infra import posters
from tests.conftest import ALICE
from tests.gallery.visitor import count_extractions, delivered, visiting
from tests.support import RecordingPort, RunningCore

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


@pytest.fixture
def core_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url}


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _write(path: str, data: bytes) -> None:
    Path(path).write_bytes(data)


def _unlink(path: str) -> None:
    Path(path).unlink()


def _real(path: str) -> Path:
    return Path(path).resolve()


async def _set(rc: RunningCore, job: Job, column: str, value: str | None) -> None:
    """A test's own change to a job row (the gallery only reads them)."""
    assert column in ("media_path", "finished_at")
    async with rc.core.store.transaction() as tx:
        await tx.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", (value, job.id))


async def test_the_player_gets_ranges_of_the_file(rc: RunningCore, port: RecordingPort) -> None:
    job = await delivered(rc, port, ALICE, "a spinning top")
    assert job.media_path is not None
    data = _read(job.media_path)
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        page = await alice.get(f"/gallery/v/{job.id}")
        assert f'src="/gallery/v/{job.id}/file"' in page.text and 'id="expired"' not in page.text
        part = await alice.get(f"/gallery/v/{job.id}/file", headers={"Range": "bytes=100-1099"})
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
        assert part.body == data[100:1100]
        tail = await alice.get(f"/gallery/v/{job.id}/file", headers={"Range": "bytes=-500"})
        assert tail.status == 206 and tail.body == data[-500:]
        whole = await alice.get(f"/gallery/v/{job.id}/file")
        assert whole.status == 200 and whole.body == data
        assert whole.headers["Content-Type"] == "video/mp4"
        assert whole.headers.get("Accept-Ranges") == "bytes"
        download = await alice.get(f"/gallery/v/{job.id}/download")
        assert download.body == data
        assert download.headers["Content-Disposition"].startswith("attachment;")


async def test_no_file_outside_media_dir_is_served(
    rc: RunningCore, port: RecordingPort, tmp_path: Path
) -> None:
    job = await delivered(rc, port, ALICE, "an ordinary clip")
    secret = tmp_path / "outside.mp4"
    secret.write_bytes(b"not yours: the database, a key, anything")
    link = rc.core.media.media_dir / "link-out.mp4"
    link.symlink_to(secret)
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        for pointed in (
            str(secret),
            str(link),
            str(rc.core.media.media_dir / ".." / "outside.mp4"),
            str(rc.core.media.media_dir),
        ):
            await _set(rc, job, "media_path", pointed)
            for path in ("/file", "/download", "/poster"):
                answer = await alice.get(f"/gallery/v/{job.id}{path}")
                assert b"not yours" not in answer.body, (pointed, path)
                assert answer.status == (200 if path == "/poster" else 404), (pointed, path)
            page = await alice.get(f"/gallery/v/{job.id}")
            assert 'id="expired"' in page.text and 'id="player"' not in page.text


async def test_videos_past_retention_or_gone_show_as_expired(
    rc: RunningCore, port: RecordingPort
) -> None:
    kept = await delivered(rc, port, ALICE, "kept one")
    old = await delivered(rc, port, ALICE, "old one")
    days = rc.settings.media_retention_days
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=days, minutes=1)
    await _set(rc, old, "finished_at", long_ago.isoformat(timespec="milliseconds"))
    async with visiting(rc) as alice:
        listing = await alice.sign_in(rc, ALICE)
        cards = {j.id: listing.text.split(f'id="video-{j.id}"', 1)[1][:1500] for j in (kept, old)}
        assert "Expired" in cards[old.id].split("</li>")[0]
        assert "Expired" not in cards[kept.id].split("</li>")[0]
        page = await alice.get(f"/gallery/v/{old.id}")
        assert page.status == 200 and 'id="expired"' in page.text and "<video" not in page.text
        assert (await alice.get(f"/gallery/v/{old.id}/file")).status == 404
        assert kept.media_path is not None
        _unlink(kept.media_path)  # the file is gone (clean-up, another disk)
        gone = await alice.get(f"/gallery/v/{kept.id}")
        assert 'id="expired"' in gone.text and "<video" not in gone.text


async def test_posters_are_extracted_once(
    rc: RunningCore, port: RecordingPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = count_extractions(monkeypatch)
    job = await delivered(rc, port, ALICE, "a paper boat")
    assert job.media_path is not None
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        first = await alice.get(f"/gallery/v/{job.id}/poster")
        assert first.status == 200 and first.headers["Content-Type"] == "image/jpeg"
        assert first.body.startswith(b"\xff\xd8")  # a JPEG
        saved = posters.poster_path(Path(job.media_path))
        assert saved.parent == Path(job.media_path).parent and saved.read_bytes() == first.body
        second = await alice.get(f"/gallery/v/{job.id}/poster")
        assert second.body == first.body
    assert made == [_real(job.media_path)]  # once, for two views


async def test_a_file_pyav_cannot_read_gets_a_placeholder(
    rc: RunningCore, port: RecordingPort
) -> None:
    job = await delivered(rc, port, ALICE, "a broken file")
    assert job.media_path is not None
    _write(job.media_path, b"\x00\x00\x00\x18ftypmp42 and then garbage" * 10)
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        for _ in range(2):
            answer = await alice.get(f"/gallery/v/{job.id}/poster")
            assert answer.status == 200 and answer.headers["Content-Type"] == "image/svg+xml"
        page = await alice.get("/gallery/")
        assert 'alt="Poster frame of the video for: a broken file"' in page.text
