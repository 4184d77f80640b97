"""The console's `/gallery`: the same service call as Slack and Discord; its link opens the
gallery of the console's own workspace; without PUBLIC_BASE_URL the line says what is missing
(the demo serves no HTTP, so there it always says so)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from adapters.console import ConsoleChat, ConsolePort
from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.gallery.visitor import visiting
from tests.support import running_core

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ME = Requester(platform="console", workspace="local", user="tester", display_name="tester")


async def test_slash_gallery_prints_a_link_that_opens_the_gallery(
    tmp_path: Path, sim: Simulator
) -> None:
    out = io.StringIO()
    port = ConsolePort(out)
    async with running_core(tmp_path, sim, ports=[port]) as rc:
        chat = ConsoleChat(rc.core.service, port, ME)
        await chat.handle("/gallery")
        assert not chat.failed
        found = re.search(r"(http://\S+/gallery/open\?t=\S+)", out.getvalue())
        assert found is not None, out.getvalue()
        async with visiting(rc) as browser:
            page = await browser.get(found.group(1))
            assert page.status == 200 and 'id="who">tester<' in page.text


async def test_without_public_base_url_it_says_so(tmp_path: Path, sim: Simulator) -> None:
    out = io.StringIO()
    port = ConsolePort(out)
    async with running_core(tmp_path, sim, ports=[port], public=False) as rc:
        chat = ConsoleChat(rc.core.service, port, ME)
        await chat.handle("gallery")
        assert chat.failed and "The gallery needs PUBLIC_BASE_URL" in out.getvalue()
