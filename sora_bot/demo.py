"""`sora-bot demo`: the whole pipeline on one machine with no tokens.

The built-in EvoLink simulator runs on 127.0.0.1 (random port), the store is DATABASE_URL like
every command (so `sora-bot admin jobs` sees demo jobs), and the console (adapters/console) is
the chat. The process is wired by `bot.bootstrap.running_process`, like `sora-bot run`, with
the console's port; the interactive demo also serves its web server on 127.0.0.1 (a random free
port; PUBLIC_BASE_URL is that address, so `/gallery` opens the web gallery in a browser on this
machine, and the simulator's callbacks reach the bot there). Nothing listens beyond loopback;
one command (`-c`) serves nothing (its links would die with it).

Leaving: end of input (a pipe, Ctrl-D), `/quit` and Ctrl-C all stop reading and then wait for
the jobs this session started to end; a second Ctrl-C leaves them open (their credits stay
held; the next start with this database resumes them) and says so. The exit code says whether
every job finished: 0 all delivered (or cancelled), 1 one failed or was left open.

The chat screen shows the chat only: log lines go to `demo.log` next to the database (the
first line says where), or to the screen with `-v`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TextIO

from adapters.console import ConsoleChat, ConsolePort, console_requester
from adapters.console.terminal import LineSource
from bot.app import bind_listener
from bot.bootstrap import running_process
from bot.domain.models import Job, JobStatus
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient
from bot.infra.logs import log_to_file
from bot.infra.simulator import Simulator, SimulatorConfig

DEMO_KEY = "sk-demo-simulator"
DEMO_MODEL = "seedance-2.0-text-to-video"  # 4–15 s


async def run_demo(
    settings: Settings,
    *,
    command: str | None = None,
    task_seconds: float = 4.0,
    out: TextIO | None = None,
    timeout: float = 600.0,
    verbose: bool = False,
) -> int:
    config = SimulatorConfig(task_seconds=task_seconds)
    lines: LineSource | None = None
    if command is None:
        lines = await LineSource.open(history=_beside_db(settings, "demo_history"))
        out = out or lines.out
    out = out or sys.stdout
    log_file = None if (verbose or command is not None) else _beside_db(settings, "demo.log")
    if log_file is not None and not log_to_file(log_file):
        log_file = None  # someone else's handlers (tests): leave logging alone
    try:
        async with Simulator.serve(config, host="127.0.0.1", port=0) as sim:
            # The interactive demo serves its pages (the gallery) on loopback; one command
            # (-c) ends at once, so a link it printed would be dead: it serves nothing.
            sock = bind_listener("127.0.0.1", 0) if command is None else None
            web_url = None if sock is None else f"http://127.0.0.1:{sock.getsockname()[1]}"
            demo_settings = settings.model_copy(update={"public_base_url": web_url})
            if "default_model" not in settings.model_fields_set:
                # The demo's own default takes the contract's example (`--duration 10`), which
                # the Sora model EvoLink offers (4, 8 or 12 s) does not; DEFAULT_MODEL wins.
                demo_settings = demo_settings.model_copy(update={"default_model": DEMO_MODEL})
            evolink = EvoLinkClient(sim.base_url, DEMO_KEY)
            port = ConsolePort(out)
            try:
                async with running_process(
                    demo_settings, ports=[port], evolink=evolink, sock=sock, serve_http=bool(sock)
                ) as process:
                    chat = ConsoleChat(process.service, port, console_requester())
                    if lines is None:
                        assert command is not None
                        return await _one_command(chat, port, command, timeout)
                    where = f"database: {settings.database_where}; gallery: /gallery" + (
                        f"; logs: {log_file} (-v shows them here)" if log_file else ""
                    )
                    return await _interactive(chat, port, lines, sim.base_url, where, timeout)
            finally:
                await evolink.aclose()
                if sock is not None:
                    sock.close()  # the web server has stopped; a close after it is harmless
    finally:
        if lines is not None:
            lines.close()


def _beside_db(settings: Settings, name: str) -> Path:
    """Beside the SQLite file; in the working directory for PostgreSQL."""
    if not settings.database_path:
        return Path.cwd() / name
    return Path(settings.database_path).resolve().parent / name


async def _one_command(chat: ConsoleChat, port: ConsolePort, command: str, timeout: float) -> int:
    job = await chat.handle(command)
    if job is None:
        # Not a video request (or refused): the answer was printed; refusals are failures.
        return 2 if chat.failed else 0
    try:
        async with asyncio.timeout(timeout):
            final = await port.watch(job.id)
    except TimeoutError:
        chat.say(f"✗ job {job.id} did not finish within {timeout:.0f}s")
        return 1
    if final.status == JobStatus.DELIVERED:
        print(port.saved[job.id], file=port.out)
        return 0
    return 1


QUIT_WORDS = ("/quit", "/exit", "quit", "exit")


async def _interactive(
    chat: ConsoleChat,
    port: ConsolePort,
    lines: LineSource,
    sim_url: str,
    where: str,
    timeout: float,
) -> int:
    chat.say(
        "sora-bot demo — a console chat against the built-in EvoLink simulator "
        f"({sim_url}).\nType /help for commands, /quit (or Ctrl-D) to leave. Try: "
        "/sora a paper boat on a rainy street --duration 10" + (f"\n({where})" if where else "")
    )
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    handles_sigint = sys.platform != "win32"  # the Windows event loop has no signal handlers
    if handles_sigint:
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
    try:
        await _read_until_quit(chat, lines, interrupted)
        lines.stop()
        return await _finish_open_jobs(chat, port, interrupted, timeout)
    finally:
        if handles_sigint:
            loop.remove_signal_handler(signal.SIGINT)


async def _read_until_quit(
    chat: ConsoleChat, lines: LineSource, interrupted: asyncio.Event
) -> None:
    stop = asyncio.ensure_future(interrupted.wait())
    try:
        while True:
            read = asyncio.ensure_future(lines.next())
            await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                chat.say("")  # Ctrl-C: leave the prompt line
                return
            line = read.result()
            if line is None or line.strip().casefold() in QUIT_WORDS:
                return
            await chat.handle(line)
            lines.done()
    finally:
        stop.cancel()


async def _finish_open_jobs(
    chat: ConsoleChat, port: ConsolePort, interrupted: asyncio.Event, timeout: float
) -> int:
    """Wait for the session's jobs to end (a second Ctrl-C stops waiting); 0 when every job
    finished delivered or cancelled, 1 when one failed or is left open."""
    open_jobs = {job_id: f for job_id, f in port.outcomes.items() if not f.done()}
    if open_jobs:
        interrupted.clear()
        chat.say(
            f"Waiting for {len(open_jobs)} job(s) to finish: {', '.join(open_jobs)} "
            "(Ctrl-C leaves them for the next start)…"
        )
        stop = asyncio.ensure_future(interrupted.wait())
        ended = asyncio.ensure_future(_all_ended(list(open_jobs.values())))
        try:
            await asyncio.wait({ended, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            ended.cancel()
    left = [job_id for job_id, f in port.outcomes.items() if not f.done()]
    failed = [
        job_id
        for job_id, f in port.outcomes.items()
        if f.done() and f.result().status not in (JobStatus.DELIVERED, JobStatus.CANCELLED)
    ]
    if left:
        chat.say(
            f"Left {len(left)} job(s) open: {', '.join(left)}. Their credits stay held; the "
            "next `sora-bot demo` (or `run`) with this database resumes them."
        )
    elif port.outcomes:
        chat.say(
            f"All {len(port.outcomes)} job(s) ended"
            + (
                f"; failed: {', '.join(failed)}."
                if failed
                else ", every one delivered or cancelled."
            )
        )
    return 1 if left or failed else 0


async def _all_ended(futures: list[asyncio.Future[Job]]) -> None:
    for future in futures:
        await asyncio.shield(future)  # cancelling this wait leaves the job's future alone
