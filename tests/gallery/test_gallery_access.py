"""The gallery's doors, over real HTTP on 127.0.0.1 and on both engines: a link from the service
opens once; tampered, expired and replayed links get a clear page (4xx, never 500); sessions
expire; nobody sees another workspace's videos or another person's unfinished jobs; admin
pages are for whom the service calls an admin; every answer carries the security headers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import ConfigError
from bot.domain.models import Requester, Surface
from bot.gallery import links, session
from bot.infra.simulator import Simulator
from tests.conftest import ALICE, BOB
from tests.gallery.visitor import delivered, visiting
from tests.support import RecordingPort, RunningCore, running_core

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

OUTSIDER = Requester(platform="test", workspace="W2", user="carol")
ADMIN = Requester(platform="test", workspace="W1", user="dana", workspace_admin=True)


@pytest.fixture
def core_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url}


async def test_a_link_opens_once_and_starts_a_session_for_its_person(
    rc: RunningCore, port: RecordingPort
) -> None:
    job = await delivered(rc, port, ALICE, "a lighthouse in a storm")
    link = await rc.core.service.gallery_link(ALICE)
    assert link.startswith(f"{rc.base_url}/gallery/open?t=")
    async with visiting(rc) as alice:
        page = await alice.get(link)
        assert page.status == 200 and f'id="video-{job.id}"' in page.text
        assert "a lighthouse in a storm" in page.text
        cookie = next(c for c in alice.http.cookie_jar if c.key == session.COOKIE_NAME)
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/gallery"
        assert not cookie["secure"]  # PUBLIC_BASE_URL is http://127.0.0.1 here
        assert "lighthouse" not in cookie.value  # encrypted, not merely signed
        twice = await alice.get(link)  # clicked again in chat: this browser is signed in
        assert twice.status == 200 and f'id="video-{job.id}"' in twice.text
        bare = await alice.get("/gallery", allow_redirects=False)
        assert bare.status == 302 and bare.headers["Location"] == "/gallery/"
    async with visiting(rc) as someone_else:
        again = await someone_else.get(link)
        assert again.status == 410 and "already used" in again.text
        assert (await someone_else.get("/gallery/")).status == 401


async def test_tampered_expired_and_malformed_links_get_clear_pages(
    rc: RunningCore, port: RecordingPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = rc.core.service
    good = await service.gallery_link(ALICE)
    token = good.split("?t=", 1)[1]
    minutes = rc.settings.gallery_link_minutes
    monkeypatch.setattr(links, "clock", lambda: time.time() - minutes * 60 - 5)
    old = await service.gallery_link(ALICE)
    monkeypatch.setattr(links, "clock", time.time)
    payload, stamp, signature = token.rsplit(".", 2)
    cases = {
        "signature changed": (f"{payload}.{stamp}.{signature[::-1]}", "not valid"),
        "payload changed": (f"{payload[:-3]}AAA.{stamp}.{signature}", "not valid"),
        "cut short": (token[: len(token) // 2], "not valid"),
        "no token": ("", "not valid"),
        "expired": (old.split("?t=", 1)[1], "expired"),
    }
    async with visiting(rc) as visitor:
        for case, (bad, words) in cases.items():
            answer = await visitor.get(f"/gallery/open?t={bad}")
            assert answer.status == 400, case
            assert words in answer.text and "/sora gallery" in answer.text, case
            assert "Traceback" not in answer.text, case
        assert (await visitor.get("/gallery/")).status == 401  # no session came of them
        assert (await visitor.get(good)).status == 200  # the good one was not used up


async def test_a_link_made_by_a_replica_a_little_ahead_opens(
    rc: RunningCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(links, "clock", lambda: time.time() + links.CLOCK_SKEW - 1)
    link = await rc.core.service.gallery_link(ALICE)  # its clock is 4 s ahead of ours
    monkeypatch.setattr(links, "clock", time.time)
    async with visiting(rc) as alice:
        assert (await alice.get(link)).status == 200


async def test_a_link_preview_robot_does_not_use_the_link_up(rc: RunningCore) -> None:
    link = await rc.core.service.gallery_link(ALICE)
    async with visiting(rc) as robot:
        preview = await robot.get(
            link,
            headers={"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
        )
        assert preview.status == 200 and "single-use" in preview.text
        assert (await robot.get("/gallery/")).status == 401
    async with visiting(rc) as alice:
        assert (await alice.get(link)).status == 200


async def test_sessions_expire(rc: RunningCore, monkeypatch: pytest.MonkeyPatch) -> None:
    hours = rc.settings.gallery_session_hours
    async with visiting(rc) as alice:
        await alice.sign_in(rc, ALICE)
        monkeypatch.setattr(session, "clock", lambda: time.time() + hours * 3600 - 60)
        assert (await alice.get("/gallery/")).status == 200
        monkeypatch.setattr(session, "clock", lambda: time.time() + hours * 3600 + 60)
        expired = await alice.get("/gallery/")
        assert expired.status == 401 and "/sora gallery" in expired.text
        monkeypatch.setattr(session, "clock", time.time)
        assert (await alice.get("/gallery/")).status == 401  # ended, not just hidden


async def test_another_workspace_sees_none_of_it(rc: RunningCore, port: RecordingPort) -> None:
    job = await delivered(rc, port, ALICE, "a secret launch plan")
    async with visiting(rc) as carol:
        page = await carol.sign_in(rc, OUTSIDER)
        assert job.id not in page.text and "secret launch" not in page.text
        for path in ("", "/file", "/poster", "/download"):
            answer = await carol.get(f"/gallery/v/{job.id}{path}")
            assert answer.status == 404, path
            assert "secret launch" not in answer.text
        filtered = await carol.get("/gallery/?person=alice&q=secret")
        assert filtered.status == 200 and job.id not in filtered.text
    async with visiting(rc) as bob:  # the same workspace sees it
        page = await bob.sign_in(rc, BOB)
        assert f'id="video-{job.id}"' in page.text


async def test_own_unfinished_jobs_are_shown_to_their_person_only(
    rc: RunningCore, port: RecordingPort
) -> None:
    service = rc.core.service
    failing = await service.submit(
        ALICE, service.parse("a storm [[fail:content_policy_violation]]"), Surface()
    )
    await port.wait_for(failing.id, "failed", timeout=20)
    async with visiting(rc) as alice:
        page = await alice.sign_in(rc, ALICE)
        assert f'id="job-{failing.id}"' in page.text and "failed" in page.text
        assert (await alice.get(f"/gallery/v/{failing.id}")).status == 200
    async with visiting(rc) as bob:
        page = await bob.sign_in(rc, BOB)
        assert failing.id not in page.text
        assert (await bob.get(f"/gallery/v/{failing.id}")).status == 404


async def test_admin_pages_are_for_admins_as_the_service_decides(rc: RunningCore) -> None:
    async with visiting(rc) as alice:
        page = await alice.sign_in(rc, ALICE)
        assert 'id="nav-admin"' not in page.text
        for path in ("/gallery/admin", "/gallery/admin/chart.png"):
            refused = await alice.get(path)
            assert refused.status == 403 and "budget admins" in refused.text, path
    async with visiting(rc) as dana:
        page = await dana.sign_in(rc, ADMIN)
        assert 'id="nav-admin"' in page.text
        assert (await dana.get("/gallery/admin")).status == 200
        chart = await dana.get("/gallery/admin/chart.png")
        assert chart.status == 200 and chart.body.startswith(b"\x89PNG")


async def test_an_admin_of_another_workspace_is_no_admin_here(
    rc: RunningCore, port: RecordingPort
) -> None:
    await delivered(rc, port, ALICE, "a W1 video")
    elsewhere = Requester(platform="test", workspace="W2", user="dana", workspace_admin=True)
    async with visiting(rc) as dana:
        await dana.sign_in(rc, elsewhere)
        dash = await dana.get("/gallery/admin")  # W2's own dashboard: nobody used it
        assert dash.status == 200 and 'id="no-usage"' in dash.text
        assert 'id="usage-alice"' not in dash.text


async def test_every_answer_carries_the_security_headers(
    rc: RunningCore, port: RecordingPort
) -> None:
    job = await delivered(rc, port, ALICE, "a quiet harbour")
    async with visiting(rc) as alice:
        answers = {"signed out": await alice.get("/gallery/")}
        await alice.sign_in(rc, ALICE)
        answers |= {
            "list": await alice.get("/gallery/"),
            "video": await alice.get(f"/gallery/v/{job.id}"),
            "file": await alice.get(f"/gallery/v/{job.id}/file"),
            "poster": await alice.get(f"/gallery/v/{job.id}/poster"),
            "missing": await alice.get("/gallery/v/nope"),
            "css": await alice.get("/gallery/static/gallery.css"),
        }
    for name, answer in answers.items():
        csp = answer.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp, name
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", name
        assert answer.headers.get("Referrer-Policy") == "no-referrer", name
    assert answers["list"].headers["Cache-Control"] == "no-store"
    assert "<script" not in answers["list"].text and "style=" not in answers["list"].text


async def test_without_public_base_url_the_link_says_what_is_missing(
    tmp_path: Path, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim, public=False) as rc:
        with pytest.raises(ConfigError, match="The gallery needs PUBLIC_BASE_URL"):
            await rc.core.service.gallery_link(ALICE)


async def test_direct_messages_are_nobodys_workspace(rc: RunningCore) -> None:
    """Every Discord DM user is in the workspace `dm`: there each sees only their own videos."""
    discord = RecordingPort("discord")
    rc.core.register_port(discord)
    erin = Requester(platform="discord", workspace="dm", user="111")
    finn = Requester(platform="discord", workspace="dm", user="222")
    hers = await delivered(rc, discord, erin, "erin's private clip")
    async with visiting(rc) as visitor:
        page = await visitor.sign_in(rc, finn)
        assert hers.id not in page.text and "private clip" not in page.text
        assert (await visitor.get(f"/gallery/?person={erin.user}")).text.count(hers.id) == 0
        assert (await visitor.get(f"/gallery/v/{hers.id}")).status == 404
    async with visiting(rc) as visitor:
        page = await visitor.sign_in(rc, erin)
        assert f'id="video-{hers.id}"' in page.text


async def test_under_https_the_session_cookie_is_secure(tmp_path: Path, sim: Simulator) -> None:
    public = "https://bot.example.com"
    async with running_core(tmp_path, sim, public_base_url=public) as rc:
        link = await rc.core.service.gallery_link(ALICE)
        assert link.startswith(f"{public}/gallery/open?t=")
        async with visiting(rc) as alice:  # the same server, reached without its proxy
            opened = await alice.get(link.replace(public, rc.base_url), allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/gallery/"
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith(f"{session.COOKIE_NAME}=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/gallery"):
        assert flag in cookie, flag
    hours = rc.settings.gallery_session_hours
    assert f"Max-Age={hours * 3600}" in cookie
