"""Several workspaces installed by OAuth on one bot: each /sora talks to Slack with its own
workspace's token (progress, upload), an uninstall of one cancels its queued job and leaves the
other alone, a re-install finds the history, and a job resumed by a new process on the same
database posts with its workspace's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.models import Job, JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import ADMIN, ALICE, BOB, WAIT, SlackWorld
from tests.adapters.slack.fake_oauth import FakeSlackOAuth
from tests.adapters.slack.oauth_world import (
    command,
    event,
    install,
    installation_rows,
    oauth_bot_on,
)
from tests.adapters.slack.test_slack_modal import (
    PNG,
    conversation,
    selected,
    submission,
    text_value,
)
from tests.prices import DEFAULT_MODEL
from tests.support import running_simulator

TEAM_A, TEAM_B = "T0AAA", "T0BBB"
CHANNEL_A, CHANNEL_B = "C0AAA", "C0BBB"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackOAuth]:
    async with FakeSlackOAuth() as server:
        yield server


async def two_installed(world: SlackWorld, fake: FakeSlackOAuth) -> tuple[str, str]:
    for team in (TEAM_A, TEAM_B):
        status, text = await install(world, team)
        assert status == 200, text
    return fake.token_of(TEAM_A), fake.token_of(TEAM_B)


def tokens_in(fake: FakeSlackOAuth, method: str, channel_key: str, channel: str) -> set[str]:
    return {str(c.token) for c in fake.ok_calls_to(method) if c.args.get(channel_key) == channel}


async def jobs_of(world: SlackWorld, team: str) -> list[Job]:
    rows = await world.rc.core.store.fetchall(
        "SELECT id FROM jobs WHERE workspace = ? ORDER BY created_at", (team,)
    )
    return [await world.rc.core.service.get_job(r["id"]) for r in rows]


async def gone(world: SlackWorld, team: str) -> None:
    """Wait until `team` has no installation row (bolt runs listeners after their ack)."""

    async def loop() -> None:
        while True:  # a database fact: re-read
            if team not in {r["team_id"] for r in await installation_rows(world)}:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), WAIT)


async def test_each_workspace_is_served_with_its_own_token(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        token_a, token_b = await two_installed(world, fake)
        assert token_a != token_b
        await command(world, "a paper boat", team=TEAM_A, user=ALICE, channel=CHANNEL_A)
        await command(world, "a red kite", team=TEAM_B, user=BOB, channel=CHANNEL_B)
        await fake.wait_for(lambda: len(fake.ok_calls_to("files.completeUploadExternal")) == 2)

        for channel, token in ((CHANNEL_A, token_a), (CHANNEL_B, token_b)):
            assert tokens_in(fake, "chat.postMessage", "channel", channel) == {token}
            assert tokens_in(fake, "chat.update", "channel", channel) == {token}
            assert tokens_in(fake, "files.completeUploadExternal", "channel_id", channel) == {token}
        assert sorted(map(str, fake.tokens_used("files.getUploadURLExternal"))) == sorted(
            [token_a, token_b]
        )
        assert {f.channel_id for f in fake.shared_files} == {CHANNEL_A, CHANNEL_B}
        # Every Web API call carried one of the two installations' tokens.
        assert {c.token for c in fake.calls if c.method.startswith(("chat.", "files."))} == {
            token_a,
            token_b,
        }


async def test_uninstall_cancels_that_workspaces_queued_job_and_leaves_the_other(
    fake: FakeSlackOAuth, tmp_path: Path
) -> None:
    async with (
        running_simulator(task_seconds=30) as slow,
        oauth_bot_on(fake, tmp_path, slow, max_jobs_per_user=1) as world,
    ):
        token_a, token_b = await two_installed(world, fake)
        await command(world, "first boat", team=TEAM_A, user=ALICE, channel=CHANNEL_A)
        await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
        await command(world, "second boat", team=TEAM_A, user=ALICE, channel=CHANNEL_A)
        await command(world, "a red kite", team=TEAM_B, user=BOB, channel=CHANNEL_B)

        async def settled() -> tuple[list[Job], list[Job]]:
            """A: one at EvoLink, one queued behind it; B: at EvoLink."""
            while True:
                a, b = await jobs_of(world, TEAM_A), await jobs_of(world, TEAM_B)
                if len(a) == 2 and b and b[0].status == JobStatus.SUBMITTED:
                    return a, b
                await asyncio.sleep(0.02)

        a_jobs, _ = await asyncio.wait_for(settled(), WAIT)
        first, queued = a_jobs
        assert first.status == JobStatus.SUBMITTED and queued.status == JobStatus.PENDING
        alice = Requester(platform="slack", workspace=TEAM_A, user=ALICE)
        admin = Requester(platform="slack", workspace=TEAM_A, user=ADMIN)
        service = world.rc.core.service
        await service.change_workspace_setting(admin, "slack", TEAM_A, "admin_channel", "C0ADMINS")
        before = await world.rc.core.service.balance(alice)
        assert before.held == first.reserved + queued.reserved

        # Slack revokes A's token and tells the app.
        del fake.tokens[token_a]
        status, _ = await event(world, {"type": "app_uninstalled"}, team=TEAM_A)
        assert status == 200
        await gone(world, TEAM_A)
        mark = len(fake.calls)
        cancelled = await world.wait_job(lambda j: j.status == JobStatus.CANCELLED, queued.id)
        await world.runtime.idle()

        after = await world.rc.core.service.balance(alice)
        assert after.held == first.reserved  # the queued job's hold released, once
        assert (await world.rc.core.service.get_job(first.id)).status == JobStatus.SUBMITTED
        assert cancelled.charged_uc is None
        assert {r["team_id"] for r in await installation_rows(world)} == {TEAM_B}
        b_job = (await jobs_of(world, TEAM_B))[0]
        assert not b_job.status.terminal
        # Nothing was sent for A after the uninstall: no call with its token, none to its channel.
        # (A post already on its way when the event came would be refused: A's token is revoked.)
        later = [c for c in fake.calls[mark:] if c.authorized]
        assert all(c.token != token_a for c in later)
        assert all(c.args.get("channel") != CHANNEL_A for c in later)
        assert {c.token for c in later if c.args.get("channel") == CHANNEL_B} <= {token_b}

        # B still works with its own token.
        await command(world, "credits", team=TEAM_B, user=BOB, channel=CHANNEL_B)
        await fake.wait_for(lambda: fake.responses.get(f"cmd-{TEAM_B}-{BOB}"))

        # A re-install (same team id) finds its history and its settings.
        status, _ = await install(world, TEAM_A)
        assert status == 200
        kept = await service.workspace_settings(admin, "slack", TEAM_A)
        assert kept.admin_channel == "C0ADMINS" and "admin_channel" in kept.overridden
        recent = await world.rc.core.service.recent_jobs(alice, limit=10)
        assert {j.id for j in recent} == {first.id, queued.id}
        again = await world.rc.core.service.balance(alice)
        assert again.held == first.reserved and again.used == Decimal(0)


async def test_a_job_resumed_after_a_restart_posts_with_its_workspaces_token(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    # The first process takes the order and posts its progress message, but EvoLink does not
    # answer its submits (503) before it stops: the job waits, pending, in the database.
    sim.config.http_errors["submit"] = [503] * 50
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        _, token_b = await two_installed(world, fake)
        await command(world, "a red kite", team=TEAM_B, user=BOB, channel=CHANNEL_B)
        await fake.wait_for(lambda: tokens_in(fake, "chat.postMessage", "channel", CHANNEL_B))
        job = await world.wait_job(lambda j: j.status == JobStatus.PENDING)
        await world.runtime.idle()
    assert fake.ok_calls_to("files.completeUploadExternal") == []
    sim.config.http_errors.clear()
    mark = len(fake.calls)

    # A new process on the same database, with no memory of the job or of any token.
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        done = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED, job.id)
        await fake.wait_for(lambda: fake.ok_calls_to("files.completeUploadExternal"))
    uploads = [c for c in fake.calls[mark:] if c.method == "files.completeUploadExternal"]
    assert [c.token for c in uploads] == [token_b]
    assert uploads[0].args["channel_id"] == CHANNEL_B
    assert uploads[0].args["thread_ts"] == done.surface.thread
    assert {c.token for c in fake.calls[mark:] if c.method.startswith("chat.")} == {token_b}


async def test_the_home_tab_and_tokens_revoked_follow_the_workspace(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        token_a, token_b = await two_installed(world, fake)
        status, _ = await event(world, {"type": "app_home_opened", "user": BOB}, team=TEAM_B)
        assert status == 200
        await fake.wait_for(lambda: fake.ok_calls_to("views.publish"))
        assert fake.tokens_used("views.publish") == [token_b]
        assert fake.tokens_used("users.info") == [token_b]  # the admin fact, asked in B

        # Slack revokes B's bot token: its installation goes, A's stays.
        del fake.tokens[token_b]
        revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}}
        status, _ = await event(world, revoked, team=TEAM_B)
        assert status == 200

        await gone(world, TEAM_B)
        assert {r["team_id"] for r in await installation_rows(world)} == {TEAM_A}
        assert all(c.token != token_a for c in fake.calls if c.method == "views.publish")


async def test_an_image_is_read_with_the_token_of_the_workspace_it_was_posted_in(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        _, token_b = await two_installed(world, fake)
        await command(world, "", team=TEAM_B, user=BOB, channel=CHANNEL_B)  # opens the modal
        opened = await fake.wait_for(lambda: fake.ok_calls_to("views.open"))
        assert [c.token for c in opened] == [token_b]
        image = fake.add_file("boat.png", PNG, "image/png")
        payload = submission(
            opened[0].args["view"],
            {
                "prompt": text_value("a paper boat"),
                "model": selected(DEFAULT_MODEL),
                "image": {"type": "file_input", "files": [image]},
                "channel": conversation(CHANNEL_B),
            },
            user=BOB,
        )
        payload["team"]["id"] = payload["view"]["team_id"] = payload["user"]["team_id"] = TEAM_B
        status, _ = await world.interact(payload)
        assert status == 200
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        assert job.requester.workspace == TEAM_B and job.request.image_url
        assert fake.tokens_used("files.info") == [token_b]
        assert fake.tokens_used("download") == [token_b]
        assert fake.files[image["id"]].downloads == 1


async def test_a_job_of_an_uninstalled_workspace_finishes_without_posting(
    fake: FakeSlackOAuth, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        running_simulator(task_seconds=2) as sim,
        oauth_bot_on(fake, tmp_path, sim) as world,
    ):
        token_a, _ = await two_installed(world, fake)
        await command(world, "a paper boat", team=TEAM_A, user=ALICE, channel=CHANNEL_A)
        job = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
        del fake.tokens[token_a]
        await event(world, {"type": "app_uninstalled"}, team=TEAM_A)
        await gone(world, TEAM_A)  # bolt ran the listener (after its ack)
        mark = len(fake.calls)
        # EvoLink has it: it is rendered, kept and settled; Slack hears nothing of it.
        done = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED, job.id)
        await world.runtime.idle()
        assert done.media_path is not None
        assert await asyncio.to_thread(Path(done.media_path).is_file)  # kept for the gallery
        # (A post already on its way when the event came would be refused: A's token is revoked.)
        assert [c for c in fake.calls[mark:] if c.authorized] == []
        assert all(c.token == token_a for c in fake.calls[mark:])
    told = [r for r in caplog.records if "nothing is posted for it" in r.getMessage()]
    assert len(told) == 1 and job.id in told[0].getMessage()
