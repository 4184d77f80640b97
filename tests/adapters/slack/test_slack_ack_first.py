"""Work spawned after an ack waits for the other requests being answered, and for a quiet
moment after the latest one (HTTP mode): a burst's acks are not queued behind the burst's own
work; and it never waits longer than HOLD_MAX.

A request is held "being answered" by sending its headers and only half of its body over a raw
connection (the handler is then reading the body).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp

from adapters.slack.runtime import EVENTS_PATH, HOLD_MAX, QUIET
from tests.adapters.slack.conftest import ALICE, GENERAL, SlackWorld
from tests.support import until


async def held_request(world: SlackWorld) -> tuple[asyncio.StreamWriter, bytes]:
    """A request to /slack/events whose body is half sent: (its connection, the rest)."""
    where = urlsplit(world.rc.base_url)
    assert where.hostname is not None and where.port is not None
    _reader, writer = await asyncio.open_connection(where.hostname, where.port)
    body = b"text=held&user_id=U0HELD"
    writer.write(
        f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: {where.hostname}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:5]
    )
    await writer.drain()
    await until(lambda: world.runtime._answering > 0, 5)
    return writer, body[5:]


async def test_work_after_an_ack_starts_once_the_other_requests_are_answered(
    world: SlackWorld,
) -> None:
    writer, rest = await held_request(world)
    started = asyncio.Event()

    async def work() -> None:
        started.set()

    world.runtime.spawn(work())
    for _ in range(20):  # many turns of the loop: the work does not take one
        await asyncio.sleep(0)
    assert not started.is_set(), "work started while a request was still being answered"
    writer.write(rest)  # the held request is answered (refused: it is not signed)
    await writer.drain()
    await asyncio.wait_for(started.wait(), 5)
    writer.close()


async def test_a_command_acked_during_a_held_request_still_gets_its_job(
    world: SlackWorld,
) -> None:
    writer, _rest = await held_request(world)  # never finished while the command runs
    loop = asyncio.get_running_loop()
    sent = loop.time()
    status, _text = await world.command("a harbour at dawn", user=ALICE, channel=GENERAL)
    assert status == 200
    await world.wait_job(lambda job: job.task_id is not None)  # admitted and submitted
    assert world.runtime._answering > 0, "the held request ended: this test proves nothing"
    assert loop.time() - sent >= HOLD_MAX * 0.9, "the work did not wait for the held request"
    writer.close()


async def test_work_waits_for_a_quiet_moment_after_the_latest_request(world: SlackWorld) -> None:
    """A burst's requests arrive a few milliseconds apart and each is often answered before the
    next comes: "nothing being answered" alone would let the work start between two of them."""
    url = world.rc.base_url + EVENTS_PATH
    async with aiohttp.ClientSession() as http, http.post(url, data=b"text=x") as resp:
        assert resp.status == 401  # refused (unsigned), but it arrived
    assert world.runtime._answering == 0
    quiet_at_start: list[float] = []

    async def work() -> None:
        quiet_at_start.append(time.monotonic() - world.runtime._arrived)

    world.runtime.spawn(work())
    await until(lambda: bool(quiet_at_start), 5)
    assert quiet_at_start[0] >= QUIET, quiet_at_start
