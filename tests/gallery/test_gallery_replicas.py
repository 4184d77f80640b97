"""The gallery across replicas on one PostgreSQL database (MEDIA_DIR shared, as it must be): a
link made by one replica opens on another, once in the whole deployment; the session cookie
one replica set is read by the other (the key comes from the shared store secret); and two
views of a new video at once extract its poster once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.infra.simulator import Simulator
from tests.conftest import ALICE
from tests.gallery.visitor import count_extractions, delivered, visiting
from tests.support import RecordingPort, RunningCore, running_core

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def test_links_and_sessions_work_on_every_replica(
    tmp_path: Path, sim: Simulator, pg_url: str
) -> None:
    port = RecordingPort("test")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shared: dict[str, Any] = {"database_url": pg_url, "media_dir": tmp_path / "media"}
    async with running_core(tmp_path / "a", sim, ports=[port], replica_id="a", **shared) as a:
        # Delivered before b starts: b has no `test` port and must not lease the job.
        job = await delivered(a, port, ALICE, "made on replica a")
        async with running_core(tmp_path / "b", sim, replica_id="b", **shared) as b:
            await _both(a, b, job.id)


async def _both(a: RunningCore, b: RunningCore, job_id: str) -> None:
    """A link made by a, opened on b; the session b set, used on a; the link replayed on a."""
    link = await a.core.service.gallery_link(ALICE)
    async with visiting(b) as browser:  # cookies are per host, not per port: shared
        page = await browser.get(link.replace(a.base_url, b.base_url))
        assert page.status == 200 and job_id in page.text
        browser.base_url = a.base_url
        assert (await browser.get(f"/gallery/v/{job_id}")).status == 200  # b's cookie on a
        assert (await browser.get(f"/gallery/v/{job_id}/file")).status == 200
    async with visiting(a) as replay:
        assert (await replay.get(link)).status == 410  # used on b: used everywhere


async def test_two_views_at_once_extract_the_poster_once(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = count_extractions(monkeypatch)
    port = RecordingPort("test")
    async with running_core(tmp_path, sim, ports=[port]) as rc:
        job = await delivered(rc, port, ALICE, "a busy first view")
        async with visiting(rc) as one, visiting(rc) as two:
            await one.sign_in(rc, ALICE)
            await two.sign_in(rc, ALICE)
            path = f"/gallery/v/{job.id}/poster"
            first, second = await asyncio.gather(one.get(path), two.get(path))
    assert first.body == second.body and first.body.startswith(b"\xff\xd8")
    assert len(made) == 1
