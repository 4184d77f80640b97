"""A browser-less visitor of the gallery for HTTP-level tests: aiohttp with a cookie jar (that
accepts 127.0.0.1's cookies), following redirects, reading the CSRF token off a page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from bot.domain.models import Job, Requester, Surface
from bot.infra import posters
from tests.support import RecordingPort, RunningCore

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Answer:
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    body: bytes


class Visitor:
    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http
        self.csrf = ""

    async def get(self, path: str, **kwargs: Any) -> Answer:
        url = path if path.startswith("http") else self.base_url + path
        async with self.http.get(url, **kwargs) as resp:
            body = await resp.read()
            answer = Answer(resp.status, body.decode("utf-8", "replace"), resp.headers, body)
        found = CSRF.search(answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    async def post(self, path: str, data: dict[str, str], **kwargs: Any) -> Answer:
        async with self.http.post(self.base_url + path, data=data, **kwargs) as resp:
            body = await resp.read()
            return Answer(resp.status, body.decode("utf-8", "replace"), resp.headers, body)

    async def sign_in(self, rc: RunningCore, who: Requester) -> Answer:
        """Open a fresh link for `who`, as a person following it from chat."""
        link = await rc.core.service.gallery_link(who)
        answer = await self.get(link)
        assert answer.status == 200, answer.text
        return answer


@asynccontextmanager
async def visiting(rc: RunningCore) -> AsyncIterator[Visitor]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        yield Visitor(rc.base_url, http)


async def delivered(rc: RunningCore, port: RecordingPort, who: Requester, prompt: str) -> Job:
    """A video `who` asked for, delivered and charged (its file in MEDIA_DIR): waits for the
    tracker's finish hook, which runs once the delivery and its capture are recorded."""
    finished: set[str] = set()
    changed = asyncio.Event()

    async def hook(job: Job) -> None:
        finished.add(job.id)
        changed.set()

    rc.core.tracker.on_finished.append(hook)
    try:
        service = rc.core.service
        job = await service.submit(who, service.parse(prompt), Surface())
        await port.wait_for(job.id, "delivered", timeout=20)
        async with asyncio.timeout(20):
            while job.id not in finished:
                changed.clear()
                await changed.wait()
    finally:
        rc.core.tracker.on_finished.remove(hook)
    return await service.get_job(job.id)


def count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every poster extraction from now on, as the video it read (the real one still runs)."""
    made: list[Path] = []
    real = posters.extract

    def counting(video: Path, target: Path) -> bool:
        made.append(video)
        return real(video, target)

    monkeypatch.setattr(posters, "extract", counting)
    return made
