"""Structured logs: job ids follow the job through tasks, JSON lines parse, secrets never show
— in unit form and through a real Slack flow (core, simulator, bolt, fake Slack Web API)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import JobStatus, Surface
from bot.infra.logs import (
    MASK,
    Redactor,
    bind_job,
    build_handler,
    current_job_id,
    job_context,
    log_options,
    quiet_noisy_loggers,
    register_secrets,
    secrets_of,
)
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import slack_bot_on
from tests.adapters.slack.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.conftest import ALICE
from tests.support import RecordingPort, RunningCore

EVOLINK_KEY = "sk-test-evolink-key"  # tests.support's key
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged anywhere, as `sora-bot -v` with LOG_FORMAT=json writes it (DEBUG)."""
    stream = io.StringIO()
    handler = build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    before = quiet_noisy_loggers()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in before.items():
            logging.getLogger(name).setLevel(old)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    entries = []
    for line in stream.getvalue().splitlines():
        entry = json.loads(line)  # one object per line, always
        assert {"ts", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


async def test_job_id_follows_tasks_started_inside_and_never_leaks_out(
    captured: io.StringIO,
) -> None:
    log = logging.getLogger("tests.ops.jobs")

    async def child() -> None:
        await asyncio.sleep(0)
        log.info("child line")

    async def binder() -> None:
        bind_job("j-bound")
        log.info("bound line")

    with job_context("j-outer"):
        log.info("outer line")
        task = asyncio.create_task(child())
    log.info("after line")
    await task
    await asyncio.create_task(binder())
    log.info("last line")
    assert current_job_id() is None

    by_message = {e["message"]: e for e in lines_of(captured)}
    assert by_message["outer line"]["job_id"] == "j-outer"
    assert by_message["child line"]["job_id"] == "j-outer"  # inherited by the task
    assert by_message["bound line"]["job_id"] == "j-bound"
    assert "job_id" not in by_message["after line"]
    assert "job_id" not in by_message["last line"]  # bind_job stayed inside its task


def test_secrets_and_token_shapes_are_masked_everywhere(captured: io.StringIO) -> None:
    register_secrets([EVOLINK_KEY, "short"])  # too short to mask safely: ignored
    log = logging.getLogger("tests.ops.secrets")
    log.warning("key is %s", EVOLINK_KEY)
    log.info("headers: %r", {"Authorization": "Bearer abc.DEF-123_456", "X": "short"})
    log.info("slack xoxb-1234-5678-abcdefABCDEF and xapp-1-A0B1-2345-ffff")
    log.info("discord Bot %s", DISCORD_TOKEN)
    log.info("GET https://discord.com/api/v10/webhooks/1234/aW50ZXJhY3Rpb246MTIzNDU2Nzg5")
    log.info("POST /evolink/callback/3f9c2b7e1d0a4c5b8e6f?x=1 -> 200")
    try:
        raise ConnectionError(f"refused with key {EVOLINK_KEY}")
    except ConnectionError:
        log.exception("submit failed %s", "(see traceback)")

    text = captured.getvalue()
    for secret in (
        EVOLINK_KEY,
        "abc.DEF-123_456",
        "xoxb-1234",
        "xapp-1-A0B1",
        DISCORD_TOKEN,
        "aW50ZXJhY3Rpb246MTIzNDU2Nzg5",
        "3f9c2b7e1d0a4c5b8e6f",
    ):
        assert secret not in text
    entries = lines_of(captured)
    messages = [e["message"] for e in entries]
    assert f"key is {MASK}" in messages
    assert "Bearer ***" in messages[1] and "short" in messages[1]
    assert messages[4].endswith("/webhooks/1234/***")
    assert messages[5] == "POST /evolink/callback/***?x=1 -> 200"
    assert "ConnectionError: refused with key ***" in entries[-1]["exc_info"]


def test_text_format_shows_the_job_and_redactor_is_idempotent() -> None:
    stream = io.StringIO()
    handler = build_handler("text", stream)
    log = logging.getLogger("tests.ops.text")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with job_context("j42"):
            log.info("with job")
        log.info("without job")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second = stream.getvalue().splitlines()
    assert " INFO tests.ops.text job=j42: with job" in first
    assert " INFO tests.ops.text: without job" in second

    redact = Redactor(["s3cr3t-value"])
    once = redact("a s3cr3t-value and Bearer tok3n-abcdef")
    assert once == f"a {MASK} and Bearer {MASK}"
    assert redact(once) == once


def test_log_options_read_env_over_dotenv_and_survive_bad_values(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_FORMAT=json\nLOG_LEVEL=warning\n")
    assert log_options(False, {}, dotenv) == ("WARNING", "json", [])
    assert log_options(False, {"LOG_FORMAT": "text"}, dotenv) == ("WARNING", "text", [])
    assert log_options(True, {}, dotenv)[0] == "DEBUG"
    level, fmt, problems = log_options(False, {"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"}, None)
    assert (level, fmt) == ("INFO", "text")
    assert len(problems) == 2 and "LOG_LEVEL" in problems[0] and "LOG_FORMAT" in problems[1]


async def test_a_real_slack_flow_logs_job_lines_with_ids_and_no_secrets(
    tmp_path: Path, sim: Simulator, captured: io.StringIO
) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        core = world.rc.core
        register_secrets([*secrets_of(core.settings), core.callback_secret])
        status, _ = await world.command("a paper boat")
        assert status == 200
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        await world.runtime.idle()

    text = captured.getvalue()
    for secret in (BOT_TOKEN, SIGNING_SECRET, EVOLINK_KEY, core.callback_secret):
        assert secret not in text
    entries = lines_of(captured)
    # The Web API calls made for the job after it was accepted (progress message, upload)
    # come from slack_sdk's own debug lines, in the task that bound the job.
    about_job = [e for e in entries if e.get("job_id") == job.id]
    assert any(e["logger"].startswith("slack_sdk") for e in about_job), about_job[:3]
    assert all(e.get("job_id") in (None, job.id) for e in entries)


async def test_tracker_lines_about_a_job_carry_its_id(
    rc: RunningCore, port: RecordingPort, captured: io.StringIO
) -> None:
    job = await rc.core.service.submit(ALICE, rc.core.service.parse("a lighthouse"), Surface())
    await port.wait_for(job.id, "delivered")
    await rc.core.tracker.wait_idle(5)
    tracker_lines = [e for e in lines_of(captured) if e["logger"] == "bot.services.tracker"]
    about_job = [e for e in tracker_lines if job.id in e["message"]]
    assert about_job, "the tracker logs the submit and the delivery"
    assert all(e.get("job_id") == job.id for e in about_job), about_job


def test_a_text_line_names_its_job_once() -> None:
    stream = io.StringIO()
    handler = build_handler("text", stream)
    log = logging.getLogger("tests.ops.once")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        with job_context("j42"):
            log.info("job %s: delivered", "j42")  # names the job itself: no prefix
            log.info("retrying the download")  # does not: the prefix names it
            log.info("job %s: parent of this one", "j41")  # another job: both named
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second, third = stream.getvalue().splitlines()
    assert first.endswith(" INFO tests.ops.once: job j42: delivered")
    assert first.count("j42") == 1
    assert second.endswith(" INFO tests.ops.once job=j42: retrying the download")
    assert third.endswith(" INFO tests.ops.once job=j42: job j41: parent of this one")
