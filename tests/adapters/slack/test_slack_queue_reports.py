"""The fair queue in the progress message, `/sora credits` with queued credits, and the admins'
reports (`/sora admin usage|chart|export`), through signed requests and the fake Slack."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.slack import render
from bot.domain.models import Job, JobStatus, Requester, fmt_credits
from bot.infra.simulator import Simulator
from bot.services.reports import build_report, report_csv
from tests.adapters.slack.actions import click, posts_to, response, text_of, updates_of
from tests.adapters.slack.conftest import ADMIN, ALICE, GENERAL, SlackWorld, slack_bot_on
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def alice() -> Requester:
    return Requester(platform="slack", workspace=TEAM_ID, user=ALICE)


def shown_for(world: SlackWorld, job: Job) -> list[str]:
    """Everything the job's progress message said, first post then each update, in order."""
    channel, ts = job.surface.channel or "", job.surface.thread or ""
    first = [c for c in posts_to(world, channel) if c.args.get("thread_ts") is None]
    posted = [text_of(c) for c in first if c.args["blocks"][-1].get("block_id") == f"job:{job.id}"]
    return posted + [text_of(c) for c in updates_of(world, channel, ts)]


async def test_second_job_shows_its_place_in_line_then_runs(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    sim.config.task_seconds = 1.0
    async with slack_bot_on(fake, tmp_path, sim, max_jobs_per_user=1) as world:
        await world.command("first boat")
        first = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
        await world.command("second boat")
        second = await world.wait_job(
            lambda j: (
                j.request.prompt == "second boat"
                and j.queue_position == 1
                and bool(j.surface.thread)
            )
        )
        line = await fake.wait_for(
            lambda: [s for s in shown_for(world, second) if "#1 in line" in s]
        )
        assert "Queued — #1 in line" in line[0] and "credits held" in line[0]
        assert len([r for r in sim.requests if r.kind == "submit"]) == 1  # still waiting

        await world.command("credits")
        credits = await response(world, f"cmd-{ALICE}")
        assert "of it for queued jobs" in credits["text"] and "Resets" in credits["text"]

        done = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED, second.id)
        # It started only once the first had left EvoLink (a slot is a job in flight there).
        first = await world.rc.core.service.get_job(first.id)
        assert first.status == JobStatus.DELIVERED
        submits = [r.json["prompt"] for r in sim.requests if r.kind == "submit"]
        assert submits == ["first boat", "second boat"]
        said = shown_for(world, done)
        assert any("Rendering" in s for s in said[said.index(line[0]) :])
        assert len(fake.shared_files) == 2


async def test_cancel_a_queued_job_and_the_next_moves_up(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    sim.config.task_seconds = 30
    async with slack_bot_on(fake, tmp_path, sim, max_jobs_per_user=1) as world:
        await world.command("running")
        running = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
        waiting: list[Job] = []
        for place, prompt in ((1, "second"), (2, "third")):
            await world.command(prompt)

            def in_line(job: Job, prompt: str = prompt, place: int = place) -> bool:
                return (
                    job.request.prompt == prompt
                    and job.queue_position == place
                    and bool(job.surface.thread)
                )

            waiting.append(await world.wait_job(in_line))
        second, third = waiting
        await fake.wait_for(lambda: any("#2 in line" in s for s in shown_for(world, third)))

        # The App Home shows the reset date and the credits held for queued jobs.
        await world.event({"type": "app_home_opened", "user": ALICE, "tab": "home"})
        home = (await fake.wait_for(lambda: fake.ok_calls_to("views.publish")))[0]
        shown = json.dumps(home.args["view"], ensure_ascii=False)
        queued = second.reserved + third.reserved
        held = fmt_credits(running.reserved + queued)
        assert f"held {held} ({fmt_credits(queued)} of it for queued jobs)" in shown
        assert "Resets <!date^" in shown

        await world.interact(click(world, render.ACTION_CANCEL, second.id, ALICE))
        await world.wait_job(lambda j: j.status == JobStatus.CANCELLED, second.id)
        # The third job's message follows its new place.
        await fake.wait_for(lambda: any("#1 in line" in s for s in shown_for(world, third)))
        balance = await world.rc.core.service.balance(alice())
        assert balance.held == running.reserved + third.reserved
        assert balance.queued == third.reserved
        submitted = [r for r in sim.requests if r.kind == "submit"]
        assert [r.json["prompt"] for r in submitted] == ["running"]
        await world.rc.core.service.cancel(third.id, alice())  # the running one is at EvoLink


async def test_admin_chart_is_a_png_in_the_channel(world: SlackWorld) -> None:
    await world.command("a paper boat")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    await world.command("admin chart", user=ADMIN)
    reply = await response(world, f"cmd-{ADMIN}")
    assert f"<#{GENERAL}>" in reply["text"]
    chart = [f for f in world.fake.shared_files if f.title and f.title.startswith("Usage")]
    assert len(chart) == 1 and chart[0].channel_id == GENERAL
    assert chart[0].data.startswith(PNG_SIGNATURE)
    comment = chart[0].initial_comment or ""
    assert f"- {ALICE.lower()}: used {job.charged}" in comment  # the chart in words
    url_calls = world.fake.ok_calls_to("files.getUploadURLExternal")
    assert url_calls[-1].args["filename"].endswith(".png")
    assert url_calls[-1].args["alt_txt"].startswith(comment[:200])

    # Not an admin: nothing is drawn or uploaded.
    await world.command("admin chart")
    assert "Only budget admins" in (await response(world, f"cmd-{ALICE}"))["text"]
    assert len(world.fake.shared_files) == 2


async def test_chart_goes_to_a_dm_when_the_bot_is_not_in_the_channel(world: SlackWorld) -> None:
    world.fake.not_in_channels.add("C0PRIVATE")
    await world.command("admin chart", user=ADMIN, channel="C0PRIVATE")
    reply = await response(world, f"cmd-{ADMIN}")
    assert "direct messages" in reply["text"]
    (chart,) = world.fake.shared_files
    assert chart.channel_id == f"D{ADMIN}" and chart.data.startswith(PNG_SIGNATURE)


async def test_admin_export_is_the_reports_csv(world: SlackWorld) -> None:
    await world.command("a paper boat")
    await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    await world.command("admin export", user=ADMIN)
    reply = await response(world, f"cmd-{ADMIN}")
    assert "direct messages" in reply["text"]
    (csv_file,) = [f for f in world.fake.shared_files if f.title and "CSV" in f.title]
    assert csv_file.channel_id == f"D{ADMIN}"
    report = await build_report(
        world.rc.core.service, actor="cli:test", platform="slack", workspace=TEAM_ID
    )
    assert csv_file.data.decode() == report_csv(report)
    assert f"slack,{TEAM_ID},{ALICE}" in csv_file.data.decode()


async def test_admin_usage_for_a_past_date_and_a_bad_date(world: SlackWorld) -> None:
    await world.command("a paper boat")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    await world.command("admin usage", user=ADMIN)
    now = (await response(world, f"cmd-{ADMIN}"))["text"]
    assert "Team usage" in now and ALICE.lower() in now and str(job.charged) in now
    await world.command("admin usage 2020-02-10", user=ADMIN)
    past = (await response(world, f"cmd-{ADMIN}", 2))["text"]
    assert "Usage 2020-02-01 – 2020-02-29" in past and "No usage in this period" in past
    await world.command("admin export someday", user=ADMIN)
    bad = (await response(world, f"cmd-{ADMIN}", 3))["text"]
    assert "is not a date" in bad
    assert world.fake.shared_files[1:] == []  # only the video was uploaded
