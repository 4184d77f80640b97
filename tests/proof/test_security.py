"""Security: signatures, secrets, tokens, permissions and user-supplied URLs — through the real
request paths (signed HTTP to /slack/events, the callback and /media routes, the real
discord.py client on the fake Discord), asserting on effects: jobs, ledger rows, what EvoLink
and the fake platforms received, what was logged.

Findings written down here:
- Slack replays: bolt verifies the signature and the 5-minute window only, so the very same
  signed request sent twice is served twice (two jobs, two holds). Slack does not retry slash
  commands, so a byte-identical second copy is a replay; the adapter now answers it with an
  empty 200 and does nothing (adapters/slack/runtime.py keeps the signatures it has served
  for the window).
- `--image` links typed by users must name a public host (bot/domain/requests.py); the bot never
  fetches a user-supplied link itself (Slack images come from Slack's own file URLs, Discord
  attachments and typed links are handed to EvoLink, not downloaded).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.domain.errors import InputError, JobStateError, PermissionDenied
from bot.domain.models import JobStatus, Requester, Surface
from bot.infra.logs import NOISY_LOGGERS
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import bot_on
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.adapters.discord.helpers import ALICE as D_ALICE
from tests.adapters.discord.helpers import BOB as D_BOB
from tests.adapters.discord.helpers import eventually, opt, sora_options
from tests.adapters.slack.conftest import ADMIN, ALICE, BOB, slack_bot_on
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_headers,
    sign,
    slash_command_body,
)
from tests.support import RecordingPort, RunningCore, running_core, running_simulator

EVOLINK_KEY = "sk-test-evolink-key"  # tests.support.make_settings
WAIT = 10.0


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running_simulator(task_seconds=0.3) as simulator:
        yield simulator


async def _jobs(rc: RunningCore) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in await rc.core.store.fetchall("SELECT id, status, user_id AS user FROM jobs")
    ]


async def _ledger(rc: RunningCore) -> list[dict[str, Any]]:
    rows = await rc.core.store.fetchall(
        "SELECT kind, user_id AS user, amount_uc, job_id FROM ledger"
    )
    return [dict(r) for r in rows]


# -- Slack signatures ------------------------------------------------------------------------


async def test_a_replayed_slack_command_is_served_once(tmp_path: Path, sim: Simulator) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        body = slash_command_body("a paper boat", response_url=fake.response_url())
        headers = form_headers(body)
        first = await world.post(body, headers)
        replay = await world.post(body, headers)  # same bytes, same timestamp, within 5 min
        assert first[0] == 200 and replay[0] == 200
        await world.runtime.idle()
        assert len(await world.job_rows()) == 1
        # A new command (Slack gives each its own trigger_id) is of course served.
        body2 = slash_command_body(
            "a paper boat", trigger_id="trig-2", response_url=fake.response_url()
        )
        assert (await world.post(body2, form_headers(body2)))[0] == 200
        await world.runtime.idle()
        assert len(await world.job_rows()) == 2
        assert len(sim.tasks) <= 2


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""},
        {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v1=abc"},
        {"X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": "v0=ff"},
    ],
    ids=["words", "empty", "huge", "wrong-version", "negative"],
)
async def test_garbage_signature_headers_get_401_never_500(
    tmp_path: Path, sim: Simulator, headers: dict[str, str]
) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        body = slash_command_body("a paper boat", response_url=fake.response_url())
        status, _ = await world.post(
            body, {"Content-Type": "application/x-www-form-urlencoded", **headers}
        )
        assert status == 401
        stale = sign(body, timestamp=int(time.time()) - 301)  # just past the 5 minutes
        status, _ = await world.post(
            body, {"Content-Type": "application/x-www-form-urlencoded", **stale}
        )
        assert status == 401  # refused before any listener ran: the decision is the response
        await world.runtime.idle()
        assert (
            await world.job_rows() == []
            and [r for r in sim.requests if r.kind != "pricing"] == []
            and fake.calls == []
        )


@pytest.mark.parametrize("signed", [False, True])
async def test_a_payload_bolt_cannot_parse_is_refused_not_a_500(
    tmp_path: Path, sim: Simulator, signed: bool
) -> None:
    # bolt parses the body before it verifies the signature; `payload` that is not JSON used
    # to raise there and answer 500 to anyone on the internet (and log a traceback).
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        body = "payload=%7Bnot+json"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _ = await world.post(body, {**form, **sign(body)} if signed else form)
        assert status == (400 if signed else 401)
        assert await world.job_rows() == [] and fake.calls == []


# -- the callback secret ---------------------------------------------------------------------


async def test_the_callback_secret_is_strong_compared_in_constant_time_and_wrong_is_404(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[str, str]] = []
    real_compare = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr("bot.web.hmac.compare_digest", spy)
    async with running_core(tmp_path, sim) as rc:
        secret = rc.core.callback_secret
        assert len(secret) >= 32  # ≥ 128 bits of an unguessable path
        task_body = {"id": "task-unified-1-x", "status": "completed"}
        async with aiohttp.ClientSession() as http:
            wrong = [secret[:-1], secret + "x", secret.upper(), secret[:8], "", "..", "%2e"]
            for candidate in wrong:
                url = f"{rc.base_url}/evolink/callback/{candidate}"
                async with http.post(url, json=task_body) as resp:
                    assert resp.status in (404, 405), candidate
            async with http.post(f"{rc.base_url}/evolink/callback/{secret}", json=task_body) as r:
                assert r.status == 200
        assert (secret, secret) in [(b, a) for a, b in compared] + compared
    async with running_core(tmp_path / "other", sim) as other:
        assert other.core.callback_secret != secret  # per installation, not a constant


# -- /media tokens ---------------------------------------------------------------------------


async def test_tampered_expired_and_foreign_media_tokens_are_404(
    tmp_path: Path, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim) as rc:
        media = rc.core.media
        (media.media_dir / "clip.mp4").write_bytes(b"video bytes")
        (media.media_dir / "other.mp4").write_bytes(b"someone else's video")
        good = media.token_for("clip.mp4")
        payload, signature = good.split(".")
        name, expiry = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

        def forged(value: object) -> str:  # a new payload under the old signature
            text = json.dumps(value, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(text).rstrip(b"=").decode() + "." + signature

        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db_name = Path(rc.core.settings.database_path).name
        async with running_core(tmp_path / "other", sim) as other:
            foreign = other.core.media.token_for("clip.mp4")  # another install's secret
        bad = {
            "expiry extended": forged([name, int(expiry) + 10**6]),
            "other file": forged(["other.mp4", expiry]),
            "signature tampered": f"{payload}.{signature[::-1]}",
            "signature dropped": payload,
            "expired": media.token_for("clip.mp4", expires_at=past),
            "foreign secret": foreign,
            "path traversal": "..%2F" + db_name,
            "empty signature": f"{payload}.",
        }
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{rc.base_url}/media/{good}") as resp:
                assert resp.status == 200 and await resp.read() == b"video bytes"
            for case, token in bad.items():
                async with http.get(f"{rc.base_url}/media/{token}") as resp:
                    assert resp.status == 404, case
        with pytest.raises(ValueError):
            media.token_for("../" + db_name)


# -- permissions -----------------------------------------------------------------------------


async def test_nobody_cancels_or_remixes_someone_elses_job(tmp_path: Path, sim: Simulator) -> None:
    alice = Requester(platform="slack", workspace="W1", user="alice")
    bob = Requester(platform="slack", workspace="W1", user="bob")
    other_ws = Requester(platform="slack", workspace="W2", user="alice")  # same name elsewhere
    discord_alice = Requester(platform="discord", workspace="W1", user="alice")
    port = RecordingPort("slack")
    async with running_core(tmp_path, sim, ports=[port], admin_user_ids="slack:admin") as rc:
        service = rc.core.service
        job = await service.submit(alice, service.parse("a paper boat"), Surface(channel="C"))
        for stranger in (bob, other_ws, discord_alice):
            with pytest.raises(PermissionDenied):
                await service.cancel(job.id, stranger)
        await port.wait_for(job.id, "delivered", timeout=WAIT)
        assert (await service.get_job(job.id)).status == JobStatus.DELIVERED  # untouched
        for stranger in (bob, other_ws, discord_alice):
            with pytest.raises(PermissionDenied):
                await service.remix(job.id, stranger, "now at night", Surface(channel="C"))
        for outsider in (other_ws, discord_alice):
            with pytest.raises(PermissionDenied):
                await service.again(job.id, outsider, Surface(channel="C"))
        assert await service.recent_jobs(bob) == [] and len(sim.tasks) == 1
        # The requester and an admin may: the control for the refusals above.
        second = await service.submit(alice, service.parse("a cat"), Surface(channel="C"))
        admin = Requester(platform="slack", workspace="W9", user="admin")
        assert (await service.cancel(second.id, admin)).status == JobStatus.CANCELLED
        with pytest.raises(JobStateError):
            await service.cancel(job.id, alice)  # delivered: nothing to cancel


async def test_admin_powers_need_an_admin_of_that_platform(tmp_path: Path, sim: Simulator) -> None:
    async with running_core(tmp_path, sim, admin_user_ids="slack:U0ADMIN") as rc:
        service = rc.core.service
        target = Requester(platform="discord", workspace="G1", user="U0ADMIN")
        impostors = [
            Requester(platform="discord", workspace="G1", user="U0ADMIN"),  # same id, other app
            Requester(platform="slack", workspace="T1", user="u0admin"),  # ids are exact
            Requester(platform="slack", workspace="T1", user="U0ADMIN "),
            Requester(platform="test", workspace="W1", user="slack:U0ADMIN"),
        ]
        for actor in impostors:
            with pytest.raises(PermissionDenied):
                await service.grant(actor, target, Decimal(1000))
            with pytest.raises(PermissionDenied):
                await service.set_limit(actor, target, Decimal(1000))
            with pytest.raises(PermissionDenied):
                await service.set_team_budget(actor, "discord", "G1", Decimal(1))
        assert await _ledger(rc) == []
        assert await service.audit_log() == []
        assert (await service.balance(target)).limit == Decimal(300)


async def test_slack_admin_and_cancel_commands_from_others_change_nothing(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.config.task_seconds = 5.0  # Alice's job stays cancellable throughout
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        await world.command("a paper boat", user=ALICE)
        job = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
        for text in (
            f"admin grant <@{BOB}> 1000 because",
            f"admin set-limit <@{BOB}> 99999",
            "admin team-budget 1",
            f"cancel {job.id}",
        ):
            status, _ = await world.command(text, user=BOB)
            assert status == 200
        await world.runtime.idle()
        replies = [str(r) for rs in fake.responses.values() for r in rs]
        assert sum("Only budget admins" in r for r in replies) == 3, replies
        assert (await world.rc.core.service.get_job(job.id)).status == JobStatus.SUBMITTED
        assert [r["kind"] for r in await _ledger(world.rc)] == ["hold"]
        assert await world.rc.core.service.audit_log() == []
        # The admin may (the control).
        status, _ = await world.command(f"admin grant <@{BOB}> 10 thanks", user=ADMIN)
        await world.runtime.idle()
        assert "grant" in [r["kind"] for r in await _ledger(world.rc)]


async def test_discord_admin_commands_from_a_member_change_nothing(
    tmp_path: Path, sim: Simulator
) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild()
        async with bot_on(fake, tmp_path, sim) as world:
            for sub, options in (
                ("grant", [opt("user", D_BOB["id"], 6), opt("amount", "1000")]),
                ("team-budget", [opt("amount", "1")]),
                ("set-limit", [opt("user", D_ALICE["id"], 6), opt("amount", "99999")]),
            ):
                await fake.slash(
                    "sora-admin",
                    [{"name": sub, "type": 1, "options": options}],
                    user=D_ALICE,
                    guild_id=world.guild_id,
                    channel_id=world.channel_id,
                )

            async def refused_thrice() -> bool:
                texts = [str(r.json) for r in fake.requests if r.method in ("POST", "PATCH")]
                return sum("Only budget admins" in t for t in texts) == 3

            await eventually(refused_thrice, within=WAIT)
            assert await _ledger(world.rc) == []
            assert await world.rc.core.service.audit_log() == []


# -- user-supplied URLs ----------------------------------------------------------------------


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every hit: nothing may ever reach it."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"\x89PNG", content_type="image/png")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


INTERNAL_IMAGES = [
    "http://10.0.0.1/a.png",
    "http://192.168.1.20/a.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/a.png",
    "http://[::ffff:127.0.0.1]/a.png",
    "http://127.1/a.png",
    "http://2130706433/a.png",
    "http://0x7f000001/a.png",
    "http://localhost/a.png",
    "http://metadata.google.internal/a.png",
    "https://printer.local/a.png",
    "http://0.0.0.0/a.png",
]


@pytest.mark.parametrize("url", INTERNAL_IMAGES)
async def test_typed_image_links_to_internal_hosts_are_refused(rc: RunningCore, url: str) -> None:
    with pytest.raises(InputError) as refused:
        rc.core.service.parse(f"a cat --image {url}")
    assert refused.value.field == "image_url"
    assert rc.core.service.parse("a cat --image https://example.com/a.png").image_url == (
        "https://example.com/a.png"
    )


async def test_slack_image_link_to_loopback_is_refused_unfetched_and_unsent(
    tmp_path: Path, sim: Simulator, canary: tuple[str, list[str]]
) -> None:
    root, hits = canary
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        for text in (f"a cat --image {root}/cat.png", f"a cat --image <{root}/cat.png|cat>"):
            status, answer = await world.command(text)  # the refusal travels in the ack
            assert status == 200 and "--image" in answer and "public" in answer, answer
        await world.runtime.idle()
        assert await world.job_rows() == [] and await _ledger(world.rc) == []
    assert [r for r in sim.requests if r.kind != "pricing"] == [] and hits == []


async def test_discord_image_link_in_the_prompt_is_refused_and_attachments_are_not_fetched(
    tmp_path: Path, sim: Simulator, canary: tuple[str, list[str]]
) -> None:
    root, hits = canary
    async with FakeDiscord() as fake:
        fake.add_guild()
        async with bot_on(fake, tmp_path, sim) as world:
            await fake.slash(
                "sora",
                sora_options(f"a cat --image {root}/cat.png"),
                user=D_ALICE,
                guild_id=world.guild_id,
                channel_id=world.channel_id,
            )

            async def told() -> bool:
                return any("public link" in str(r.json) for r in fake.requests)

            await eventually(told, within=WAIT)
            assert await _jobs(world.rc) == []
            # An attachment is Discord's link (its CDN); the bot hands it to EvoLink unread.
            attachment = fake.attachment("cat.png", 1000, "image/png")
            attachment["url"] = attachment["proxy_url"] = f"{root}/attachments/cat.png"
            await fake.slash(
                "sora",
                sora_options("a cat", image=attachment["id"]),
                user=D_ALICE,
                guild_id=world.guild_id,
                channel_id=world.channel_id,
                attachments=[attachment],
            )

            async def submitted() -> bool:
                return any(r.kind == "submit" for r in sim.requests)

            await eventually(submitted, within=WAIT)
            submit = next(r for r in sim.requests if r.kind == "submit")
            assert submit.json["image_urls"] == [f"{root}/attachments/cat.png"]
    assert hits == []


# -- secrets never leave -----------------------------------------------------------------------


def _as_run_would_log(caplog: pytest.LogCaptureFixture) -> str:
    """Every record at DEBUG, unredacted, formatted with its traceback — except the DEBUG/INFO
    of the libraries `sora-bot run` pins to WARNING (bot.infra.logs.NOISY_LOGGERS): aiosqlite's
    DEBUG lines carry every SQL parameter, the callback and media secrets included.
    No masking is applied: the bot must not put a secret into a record in the first place."""
    kept = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING or not r.name.startswith(NOISY_LOGGERS)
    ]
    return "\n".join(caplog.handler.format(r) + " " + repr(r.args) for r in kept)


async def test_secrets_never_reach_logs_users_or_evolink_bodies(
    tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level, tracebacks included
    sim.config.http_errors = {"submit": [500, "disconnect"], "task": [503, "malformed"]}
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        fake.rate_limit("chat.update", times=2, retry_after=0)
        await world.command("a paper boat")
        await world.command("a cat [[fail:content_policy_violation]]", trigger_id="t2")
        await world.command("admin grant <@U0BOB> 5", user=BOB, trigger_id="t3")  # refused
        forged = slash_command_body("a forged boat", response_url=fake.response_url())
        await world.post(forged, form_headers(forged, secret="guessed-secret"))
        await world.wait_job(lambda j: j.status == JobStatus.FAILED)
        await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        fake.refuse_uploads = "file_uploads_disabled"
        await world.command("a dog", trigger_id="t4")
        await world.wait_job(
            lambda j: j.status == JobStatus.DELIVERED and "dog" in j.request.prompt
        )
        await world.runtime.idle()
        secrets_ = {
            "EvoLink key": EVOLINK_KEY,
            "Slack bot token": BOT_TOKEN,
            "Slack signing secret": SIGNING_SECRET,
            "callback secret": world.rc.core.callback_secret,
        }
        said_to_slack = " ".join(str(c.args) for c in fake.calls) + " ".join(
            str(r) for rs in fake.responses.values() for r in rs
        )
        sent_to_evolink = " ".join(str(r.json) for r in sim.requests) + " ".join(
            str(r.headers) for r in sim.requests
        )
    logged = _as_run_would_log(caplog)
    assert logged.count("\n") > 20  # the flow really logged (failures included)
    for name, secret in secrets_.items():
        assert secret not in logged, f"{name} is in the logs"
        assert secret not in said_to_slack, f"{name} reached Slack users"
        if name != "callback secret":  # the callback URL is EvoLink's to call, by design
            assert secret not in sent_to_evolink, f"{name} reached EvoLink in a body"


async def test_discord_bot_token_never_reaches_logs_or_messages(
    tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeDiscord() as fake:
        fake.add_guild()
        fake.fail("POST", r"/webhooks/\d+/itoken-\d+", 503, message="upstream connect error")
        async with bot_on(fake, tmp_path, sim) as world:
            await fake.slash(
                "sora",
                sora_options("a paper boat"),
                user=D_ALICE,
                guild_id=world.guild_id,
                channel_id=world.channel_id,
            )

            async def delivered() -> bool:
                return any(j["status"] == "delivered" for j in await _jobs(world.rc))

            await eventually(delivered, within=WAIT * 2)
    sent = " ".join(str(r.json) for r in fake.requests)
    logged = _as_run_would_log(caplog)
    for secret in (FAKE_TOKEN, EVOLINK_KEY):
        assert secret not in logged
        assert secret not in sent
