"""The console chat (adapters/console) through a real core: chat sub-commands mean the same as
on Slack and Discord (the one parser), bare prompts, grammar edges, the people's vocabulary."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.console import ConsoleChat, ConsolePort, describe_balance
from bot.domain.models import JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.support import RunningCore, running_core, running_simulator

ME = Requester(platform="console", workspace="local", user="tester", display_name="tester")


class Chat:
    def __init__(self, rc: RunningCore, port: ConsolePort, out: io.StringIO) -> None:
        self.rc = rc
        self.port = port
        self.out = out
        self.chat = ConsoleChat(rc.core.service, port, ME)

    async def say(self, line: str) -> str:
        """Type `line`; returns what the chat printed for it."""
        start = len(self.out.getvalue())
        await self.chat.handle(line)
        return self.out.getvalue()[start:]


@pytest.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    async with running_simulator(task_seconds=30.0) as simulator:
        yield simulator


@pytest.fixture
async def chat(tmp_path: Path, slow_sim: Simulator) -> AsyncIterator[Chat]:
    out = io.StringIO()
    port = ConsolePort(out)
    async with running_core(tmp_path, slow_sim, ports=[port], max_jobs_per_user=1) as rc:
        yield Chat(rc, port, out)


def submits(sim: Simulator) -> int:
    return sum(1 for r in sim.requests if r.kind == "submit")


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("/sora help", "/credits"),
        ("/help", "/credits"),
        ("help", "/credits"),
        ("/sora credits", "credits left this period: allowance"),
        ("/credits", "credits left this period: allowance"),
        ("/sora jobs", "No jobs yet"),
        ("/jobs", "No jobs yet"),
        ("/sora cancel", "Which job? /cancel <job id>"),
        ("/cancel", "Which job? /cancel <job id>"),
        ("/sora cancel jnope", "There is no job"),
        ("/sora admin", "sora-bot admin --help"),
        ("/frobnicate a cat", "Unknown command '/frobnicate'"),
    ],
)
async def test_chat_sub_commands_order_nothing(chat: Chat, line: str, expect: str) -> None:
    answer = await chat.say(line)
    assert expect in answer
    assert await chat.rc.core.store.fetchall("SELECT id FROM jobs") == []
    assert submits(chat.rc.simulator) == 0
    assert (await chat.rc.core.service.balance(ME)).held == 0


async def test_a_bare_prompt_orders_a_video_like_sora(chat: Chat) -> None:
    answer = await chat.say("a paper boat on a rainy street")
    assert "accepted" in answer and not chat.chat.failed
    (row,) = await chat.rc.core.store.fetchall("SELECT id FROM jobs")
    job = await chat.rc.core.service.get_job(row["id"])
    assert job.request.prompt == "a paper boat on a rainy street"
    assert (await chat.rc.core.service.balance(ME)).held == job.reserved > 0
    submit = await chat.rc.simulator.wait_for_request(lambda r: r.kind == "submit")
    assert submit.kind == "submit"  # what `submits` counts, so the zeros above mean something


async def test_cancel_twice_says_already_cancelled(chat: Chat) -> None:
    # max_jobs_per_user=1: the second job waits in the queue, pending and cancellable.
    await chat.say("/sora first video")
    await chat.say("/sora second video")
    jobs = await chat.rc.core.service.recent_jobs(ME)
    waiting = next(j for j in jobs if j.request.prompt == "second video")
    assert waiting.status == JobStatus.PENDING and waiting.queued

    first = await chat.say(f"/sora cancel {waiting.id}")
    assert f"Cancelled {waiting.id}" in first and "returned" in first
    second = await chat.say(f"/cancel {waiting.id}")
    assert "already cancelled" in second and "Cancelled" not in second
    assert chat.chat.failed
    balance = await chat.rc.core.service.balance(ME)
    running = next(j for j in jobs if j.request.prompt == "first video")
    assert balance.held == running.reserved  # the cancelled job holds nothing


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("a cat -d -5", "Duration must be a positive number of seconds, not -5"),
        ("a cat --duration -5", "Duration must be a positive number of seconds, not -5"),
    ],
)
async def test_grammar_edges_are_refused_with_a_clear_reason(
    chat: Chat, line: str, expect: str
) -> None:
    answer = await chat.say(line)
    assert expect in answer and chat.chat.failed
    assert await chat.rc.core.store.fetchall("SELECT id FROM jobs") == []
    assert submits(chat.rc.simulator) == 0


async def test_credits_use_one_vocabulary(chat: Chat) -> None:
    balance = await chat.rc.core.service.balance(ME)
    text = describe_balance(balance.model_copy(update={"granted": balance.limit / 2}))
    for word in ("left", "allowance", "limit", "granted", "used", "held"):
        assert word in text
    assert "reserved" not in text
    assert "allowance" in await chat.say("/credits")


async def test_an_image_link_to_a_gif_is_refused(chat: Chat) -> None:
    spec = next(s for s in chat.rc.core.catalog.models if s.image_input and s.selectable)
    answer = await chat.say(f"/sora a cat -m {spec.name} --image https://img.test/cat.gif")
    assert "must be a jpg, png or webp picture; 'cat.gif' is a .gif file" in answer
    assert await chat.rc.core.store.fetchall("SELECT id FROM jobs") == []
    assert submits(chat.rc.simulator) == 0
