"""The demo's terminal: a `sora> ` prompt with line editing and history (the standard
library's readline) on a terminal, plain lines from a pipe.

    lines = LineSource.open(history=path)     # tty: readline in a thread; pipe: asyncio reader
    line = await lines.next()                 # None at end of input (Ctrl-D, end of the pipe)
    out = lines.out                           # write job updates above the prompt

Invariants:
- On a terminal, `input()` runs in a daemon thread that asks for the next line only after the
  previous one was handled (`done()`), so an answer is printed before the next prompt; a job
  update printed while the prompt waits goes above it and the prompt is redrawn with what was
  typed so far. Nothing waits on that thread at exit, and the terminal's settings are put
  back (`close()`) even when the thread is still inside readline.
- From a pipe there is no prompt and no thread: an asyncio pipe reader, so end of input and
  Ctrl-C never wait on a blocked read.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

PROMPT = "sora> "


class PromptedOut(io.TextIOBase):
    """A stdout that keeps the prompt (and the half-typed line) below what it prints."""

    def __init__(self, stream: TextIO, source: LineSource) -> None:
        self.stream = stream
        self.source = source
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        if not lines:
            return len(text)
        with self.source.lock:
            if self.source.prompting:
                self.stream.write("\r\x1b[K")  # clear the prompt line
            for line in lines:
                self.stream.write(line + "\n")
            if self.source.prompting:
                self.stream.write(PROMPT + self.source.typed())
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


class LineSource:
    def __init__(self, stream: TextIO, *, tty: bool, history: Path | None) -> None:
        self.stream = stream
        self.tty = tty
        self.history = history
        self.lock = threading.Lock()
        self.prompting = False
        self.out: TextIO = PromptedOut(sys.stdout, self) if tty else sys.stdout  # type: ignore[assignment]
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._go = threading.Event()
        self._reader: asyncio.StreamReader | None = None
        self._saved_tty: Any = None
        self._readline: Any = None
        self._stopped = False

    @classmethod
    async def open(cls, stream: TextIO | None = None, *, history: Path | None = None) -> LineSource:
        stream = stream or sys.stdin
        tty = stream.isatty() and sys.stdout.isatty()
        source = cls(stream, tty=tty, history=history)
        if tty:
            source._start_thread()
        else:
            reader = asyncio.StreamReader()
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stream)
            source._reader = reader
        return source

    # -- a terminal: readline in a thread ---------------------------------------------------

    def _start_thread(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import termios

            self._saved_tty = termios.tcgetattr(self.stream.fileno())
        with contextlib.suppress(ImportError):
            import readline  # line editing and history for input(); not on every platform

            self._readline = readline
            if self.history is not None:
                with contextlib.suppress(OSError):
                    readline.read_history_file(self.history)
                readline.set_history_length(500)
        loop = asyncio.get_running_loop()
        self._go.set()
        thread = threading.Thread(target=self._read_lines, args=(loop,), daemon=True)
        thread.start()

    def _read_lines(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            with self.lock:
                if self._stopped:
                    return
                self.prompting = True
            try:
                line: str | None = input(PROMPT)
            except (EOFError, KeyboardInterrupt, OSError, ValueError):
                line = None
            finally:
                with self.lock:
                    self.prompting = False
            if self._stopped:
                return
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, line)
            except RuntimeError:  # the loop is closed: the demo has ended
                return
            if line is None:
                return

    def typed(self) -> str:
        """What is typed after the prompt right now (to redraw it)."""
        return str(self._readline.get_line_buffer()) if self._readline is not None else ""

    # -- both --------------------------------------------------------------------------------

    async def next(self) -> str | None:
        """The next line without its newline; None at end of input."""
        if self._reader is not None:
            raw = await self._reader.readline()
            return raw.decode("utf-8", errors="replace").rstrip("\r\n") if raw else None
        return await self._queue.get()

    def done(self) -> None:
        """The last line was handled: show the prompt again."""
        self._go.set()

    def stop(self) -> None:
        """No more lines are read (Ctrl-C, /quit): take the prompt off the screen for good."""
        with self.lock:
            if self.tty and self.prompting:
                sys.stdout.write("\r\x1b[K")
                sys.stdout.flush()
            self.prompting = False
            self._stopped = True

    def close(self) -> None:
        if self._readline is not None and self.history is not None:
            with contextlib.suppress(OSError):
                self._readline.write_history_file(self.history)
        if self._saved_tty is not None:
            import termios

            with contextlib.suppress(OSError):
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved_tty)
        if self.tty:
            with self.lock:
                if self.prompting:
                    sys.stdout.write("\r\x1b[K")
                    sys.stdout.flush()
                self.prompting = False
