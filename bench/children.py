"""Helper processes for the benchmarks: a child prints `READY <values…>` once serving, and
ends when the parent closes its stdin (so a parent that dies takes its children with it).

Invariant: every child started with `spawn` is ended by `stop` (stdin closed, then a bounded
wait, then kill by its own pid).
"""

from __future__ import annotations

import asyncio
import sys


async def spawn(script: str, *args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start `python script args…`; returns it and the values of its READY line."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        script,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    while True:
        line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
        if not line:
            raise SystemExit(f"child {args[:2]} ended before it was ready")
        words = line.split()
        if words[:1] == ["READY"]:
            return child, words[1:]


async def stop(child: asyncio.subprocess.Process) -> str:
    """Close its stdin, wait for it to end; its last line of output."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    try:
        out = await asyncio.wait_for(child.stdout.read(), 30)
        await asyncio.wait_for(child.wait(), 5)
    except TimeoutError:
        child.kill()
        await child.wait()
        return ""
    lines = out.decode().strip().splitlines()
    return lines[-1] if lines else ""


async def wait_for_stdin_eof() -> None:
    """In a child: return when the parent closes our stdin."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def read_stdin_line() -> str:
    """In a child: the next line the parent sends."""
    line: str = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip()
