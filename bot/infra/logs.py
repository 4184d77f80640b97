"""Structured logs: the job id on every line about a job, JSON or text, secrets masked.

    with job_context(job.id):          # every record logged inside carries job_id
        ...
    bind_job(job.id)                   # the same for the rest of the current task
    configure_logging(level="INFO", fmt="json", secrets=[...])
    register_secrets([token, ...])     # more values to mask, any time after

Invariants:
- The job id lives in a ContextVar: an asyncio task started inside `job_context` inherits it
  (tasks copy the context when created), and a binding made inside a task never leaks out of
  it. `JobIdFilter` copies it onto each record as `record.job_id` (None when unbound).
- Filters sit on the *handler*, not on loggers, so records propagated from any library
  (discord.py, slack_sdk, aiohttp, httpx) go through them too.
- `RedactingFilter` rewrites a record's message, arguments, traceback and stack text before
  any formatter sees them: configured secrets (EvoLink key, Discord token, Slack tokens and
  signing secret, the callback secret) and anything shaped like a token (`xoxb-…`, `xapp-…`,
  `Bearer …`, `Bot …`, Discord tokens, webhook/interaction tokens in URL paths) become `***`.
  Masking only ever removes text, so masking twice is harmless.
- A text line names its job once: the `job=<id>` prefix is left out when the message itself
  names the job (`job <id>: …`), so lines never read `job=j1…: job j1…:`.
- `JsonFormatter` writes exactly one JSON object per line: ts, level, logger, message,
  job_id (when bound), exc_info (when there is one).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "***"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(job_part)s: %(message)s"
# Kept at WARNING whatever LOG_LEVEL says. aiosqlite's DEBUG lines carry every SQL parameter:
# the callback and media secrets when they are created, prompts, user ids.
NOISY_LOGGERS = (
    "httpx", "httpcore", "aiohttp.access", "discord.gateway", "discord.client", "aiosqlite",
)  # fmt: skip

_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("sora_job_id", default=None)

# Shapes of credentials, whoever they belong to. Group 1 (when present) is kept.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{6,}"),  # Slack bot/user/… tokens
    re.compile(r"\bxapp-[A-Za-z0-9-]{6,}"),  # Slack app-level token
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE),
    re.compile(r"(\bBot\s+)[A-Za-z0-9._-]{20,}"),  # Discord "Authorization: Bot …"
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),  # Discord
    re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9._-]{20,}"),  # interaction tokens
    re.compile(r"(/evolink/callback/)[^/\s\"'?]+"),  # the callback secret in a URL
)


def current_job_id() -> str | None:
    return _job_id.get()


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Bind `job_id` to every record logged inside (and in tasks started inside)."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def bind_job(job_id: str) -> None:
    """Bind `job_id` for the rest of the current task (asyncio copies the context per task,
    so this cannot leak into the caller or into other tasks)."""
    _job_id.set(job_id)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        job_id = _job_id.get()
        record.job_id = job_id
        record.job_part = f" job={job_id}" if job_id else ""
        return True


class Redactor:
    """Masks configured secrets and token-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        fresh = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_LENGTH}
        if fresh - self._secrets:
            self._secrets |= fresh
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if self._secret_re is not None:
            text = self._secret_re.sub(MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(_keep_prefix, text)
        return text


def _keep_prefix(match: re.Match[str]) -> str:
    prefix = match.group(1) if match.re.groups else ""
    return f"{prefix}{MASK}"


REDACTOR = Redactor()


def register_secrets(secrets: Iterable[str | None]) -> None:
    """Add values (tokens, keys) that must never appear in a log line."""
    REDACTOR.add(secrets)


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor
        self._exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad %-format: keep the raw parts, masked
            message = f"{record.msg} {record.args!r}"
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """Names the job once per line: `job=<id>` before the message, unless the message names
    that job itself (`job <id>: …`, how the core's lines about a job begin)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job_part = f" job={job_id}" if job_id else ""
        if job_id and f"job {job_id}" in record.getMessage():
            record.job_part = ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            entry["job_id"] = job_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def build_handler(fmt: str = "text", stream: Any = None) -> logging.Handler:
    """A stream handler with the job-id and redaction filters and the chosen formatter."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def quiet_noisy_loggers() -> dict[str, int]:
    """Pin NOISY_LOGGERS to WARNING; returns their previous levels (for tests to restore)."""
    before = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return before


def configure_logging(
    *, level: str | int = "INFO", fmt: str = "text", secrets: Iterable[str | None] = ()
) -> logging.Handler | None:
    """Install one handler built by `build_handler` on the root logger (replacing one installed
    earlier by this function). Like `logging.basicConfig`, it leaves a root logger that already
    has someone else's handlers alone (pytest's capture, an embedding application) and returns
    None then."""
    register_secrets(secrets)
    quiet_noisy_loggers()
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "sora_handler", False)]
    if len(ours) != len(root.handlers):
        return None
    for old in ours:
        root.removeHandler(old)
        old.close()
    handler = build_handler(fmt)
    handler.sora_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def log_to_file(path: Path) -> bool:
    """Send the lines of the handler `configure_logging` installed to `path` (appended)
    instead of the screen: the demo's chat screen stays the chat. False (nothing changed)
    when that handler is not the root logger's only one (tests, an embedding application)."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "sora_handler", False)]
    if len(ours) != 1 or len(root.handlers) != 1:
        return False
    old = ours[0]
    fmt = "json" if isinstance(old.formatter, JsonFormatter) else "text"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = build_handler(fmt, path.open("a", encoding="utf-8"))
    handler.sora_handler = True  # type: ignore[attr-defined]
    root.removeHandler(old)
    old.close()
    root.addHandler(handler)
    return True


def log_options(
    verbose: bool = False,
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = Path(".env"),
) -> tuple[str, str, list[str]]:
    """(level, format, problems) from LOG_LEVEL / LOG_FORMAT; the environment wins over `.env`,
    like every other setting. `-v` means DEBUG whatever LOG_LEVEL says. An unknown value falls
    back to the default and is reported in `problems` (logging must start regardless)."""
    values: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        values.update({k.upper(): v for k, v in dotenv_values(dotenv).items() if v is not None})
    env = os.environ if environ is None else environ
    for name in ("LOG_LEVEL", "LOG_FORMAT"):
        if name in env:
            values[name] = env[name]
    problems: list[str] = []
    level = values.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}; using INFO")
        level = "INFO"
    fmt = values.get("LOG_FORMAT", "text").strip().lower() or "text"
    if fmt not in LOG_FORMATS:
        problems.append(f"LOG_FORMAT={fmt!r} is not one of text, json; using text")
        fmt = "text"
    return ("DEBUG" if verbose else level), fmt, problems


def secrets_of(settings: BaseModel) -> list[str]:
    """Every secret value in a settings object (its `SecretStr` fields)."""
    found: list[str] = []
    for _name, value in settings:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
    return found
