"""`sora-bot demo`: the whole pipeline on one machine with no tokens.

The built-in EvoLink simulator runs on 127.0.0.1 (random port), the store is DATABASE_URL like
every command (so `sora-bot admin jobs` sees demo jobs), and the console (adapters/console) is
the chat. The process is wired by `bot.bootstrap.running_process`, like `sora-bot run`, with
the console's port and no HTTP server (the demo has no public URL).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from adapters.console import ConsoleChat, ConsolePort, console_requester
from bot.bootstrap import running_process
from bot.domain.models import JobStatus
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient
from bot.infra.simulator import Simulator, SimulatorConfig

DEMO_KEY = "sk-demo-simulator"


async def run_demo(
    settings: Settings,
    *,
    command: str | None = None,
    task_seconds: float = 4.0,
    out: TextIO | None = None,
    timeout: float = 600.0,
) -> int:
    out = out or sys.stdout
    config = SimulatorConfig(task_seconds=task_seconds)
    async with Simulator.serve(config, host="127.0.0.1", port=0) as sim:
        demo_settings = settings.model_copy(update={"public_base_url": None})
        evolink = EvoLinkClient(sim.base_url, DEMO_KEY)
        port = ConsolePort(out)
        try:
            async with running_process(
                demo_settings, ports=[port], evolink=evolink, serve_http=False
            ) as process:
                chat = ConsoleChat(process.service, port, console_requester())
                if command is not None:
                    return await _one_command(chat, port, command, timeout)
                await _interactive(chat, out, sim.base_url)
                if process.jobs_in_flight:
                    # Input ended (a pipe, or Ctrl-D) with videos still being made: finish them.
                    chat.say(f"Waiting for {process.jobs_in_flight} job(s) to finish…")
                    await process.wait_idle(timeout)
                return 0
        finally:
            await evolink.aclose()


async def _one_command(chat: ConsoleChat, port: ConsolePort, command: str, timeout: float) -> int:
    text = command if command.lstrip().startswith("/") else "/sora " + command
    job = await chat.handle(text)
    if job is None:
        # Not a video request (or refused): the answer was printed; refusals are failures.
        word = text.strip().split(" ", 1)[0].lower()
        return 0 if word in ("/help", "/credits", "/jobs") else 2
    try:
        final = await asyncio.wait_for(port.watch(job.id), timeout)
    except TimeoutError:
        chat.say(f"✗ job {job.id} did not finish within {timeout:.0f}s")
        return 1
    if final.status == JobStatus.DELIVERED:
        print(port.saved[job.id], file=port.out)
        return 0
    return 1


async def _interactive(chat: ConsoleChat, out: TextIO, sim_url: str) -> None:
    out.write(
        "sora-bot demo — a console chat against the built-in EvoLink simulator "
        f"({sim_url}).\nType /help for commands, /quit to leave. Try: "
        "/sora a paper boat on a rainy street --duration 10\n"
    )
    out.flush()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    # A pipe reader, not a thread: Ctrl-C and /quit never wait on a blocked readline().
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        raw = await reader.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace")
        if line.strip().lower() in ("/quit", "/exit", "quit", "exit"):
            return
        await chat.handle(line)
