"""The `sora-bot` command line (also `python -m sora_bot`). Its outputs are a public contract
(README "Operations"; docs/ARCHITECTURE.md): scripts read these JSON fields and exit codes.

Exit codes: 0 success; 1 a failure (job failed, check found problems); 2 bad input or
configuration (the message says what to fix, in one line or a short list, never a traceback).

Invariants: the global flags (`-v`) work before or after a sub-command; every sub-command's
`--help` has a description; `quote` takes the rest of the line as the request text. The
`admin` sub-commands live in sora_bot/admin_commands.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Sequence

from bot.domain.errors import BotError, ConfigError
from bot.infra.config import DEMO_DATABASE_URL, Settings, load_settings
from sora_bot import models_command
from sora_bot.admin_commands import add_admin_parser, run_admin

log = logging.getLogger("bot")

DATABASE_HELP = (
    "Every command uses the database DATABASE_URL names (default sqlite:///sora-bot.db, "
    "relative to the working directory{here}); `demo` uses its own, {demo}, unless "
    "DATABASE_URL is set. Admin commands never create a database (`admin init` does)."
)


def _setup_logging(verbose: bool = False) -> None:
    """LOG_LEVEL / LOG_FORMAT (text|json) from the environment or `.env`; the configured secrets
    are masked in every line (see bot/infra/logs.py)."""
    from bot.infra.logs import configure_logging, log_options, secrets_of

    level, fmt, problems = log_options(verbose)
    secrets: list[str] = []
    # Invalid configuration is the command's to report; token shapes are masked regardless.
    with contextlib.suppress(ConfigError):
        secrets = secrets_of(load_settings())
    configure_logging(level=level, fmt=fmt, secrets=secrets)
    for problem in problems:
        log.warning("%s", problem)


def build_parser() -> argparse.ArgumentParser:
    here = ""
    with contextlib.suppress(ConfigError):
        here = f": here {load_settings().database_where}"
    demo_db = DEMO_DATABASE_URL.removeprefix("sqlite:///")
    parser = argparse.ArgumentParser(
        prog="sora-bot",
        description="Order AI videos from Discord and Slack, with credit budgets.",
        epilog=DATABASE_HELP.format(here=here, demo=demo_db),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "run", help="run Discord and/or Slack (whichever has tokens) and the HTTP server"
    )

    demo = sub.add_parser(
        "demo",
        help="console chat against the built-in EvoLink simulator",
        description="A console chat against the built-in EvoLink simulator: no token needed. "
        f"Its database is {demo_db} (in the working directory) unless DATABASE_URL is set.",
    )
    demo.add_argument(
        "-c", "--command", dest="command_text", help='one command, e.g. "/sora a cat --duration 10"'
    )
    demo.add_argument(
        "--task-seconds", type=_seconds, default=4.0, help="simulated task length (seconds, > 0)"
    )

    sim = sub.add_parser("simulator", help="run the EvoLink simulator alone on 127.0.0.1")
    sim.add_argument("--port", type=_port, default=8090, help="0-65535 (0: any free port)")
    sim.add_argument("--task-seconds", type=_seconds, default=20.0, help="seconds, > 0")

    quote = sub.add_parser("quote", help="what a request would cost (nothing is held or sent)")
    quote.add_argument("text", nargs="+", help="the request, e.g. a cat --duration 10")
    quote.add_argument("--json", action="store_true")

    sub.add_parser("check", help="check configuration and reachability")
    models_command.register(sub)

    add_admin_parser(sub)
    _everywhere(parser)
    return parser


def _everywhere(parser: argparse.ArgumentParser) -> None:
    """Every sub-command (at any depth) takes `-v` too and describes itself in `--help`."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, child in action.choices.items():
            text = helps.get(name)
            if child.description is None and text:
                child.description = text[0].upper() + text[1:] + "."
            if "-v" not in child._option_string_actions:
                child.add_argument(
                    "-v",
                    "--verbose",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="debug logging",
                )
            _everywhere(child)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0: any free one), got {value}")
    return value


QUOTE_FLAGS = frozenset({"--json", "-v", "--verbose", "-h", "--help"})


def _quote_argv(argv: Sequence[str]) -> list[str]:
    """`sora-bot quote a cat --duration 10 --json`: after `quote`, every word that is not one
    of quote's own flags is the request text, chat grammar flags included."""
    args = list(argv)
    at = next((i for i, word in enumerate(args) if not word.startswith("-")), None)
    if at is None or args[at] != "quote":
        return args
    rest = args[at + 1 :]
    flags = [word for word in rest if word in QUOTE_FLAGS]
    words = [word for word in rest if word not in QUOTE_FLAGS and word != "--"]
    return args[: at + 1] + flags + (["--", " ".join(words)] if words else [])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_quote_argv(sys.argv[1:] if argv is None else argv))
    _setup_logging(args.verbose)
    try:
        if args.command == "simulator":
            return _simulator(args.port, args.task_seconds)
        settings = load_settings()
        if args.command == "quote":
            return models_command.run_quote(settings, " ".join(args.text), args.json)
        if args.command == "models":
            return models_command.run_models(settings, args.json)
        return asyncio.run(_async_main(settings, args))
    except ConfigError as exc:
        print(f"sora-bot: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"sora-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _simulator(port: int, task_seconds: float) -> int:
    from bot.infra.simulator import run_simulator

    try:
        run_simulator(port, task_seconds)
    except OSError as exc:  # only binding can fail this way: it is the first thing it does
        raise ConfigError(
            f"the simulator cannot listen on 127.0.0.1:{port}: {_reason(exc)} — is "
            "something else using that port? Choose another with --port (0: any free one)."
        ) from None
    return 0


def _reason(exc: OSError) -> str:
    """The OS's words ("address already in use"), without aiohttp's "error while …: "."""
    return (exc.strerror or str(exc)).rsplit(": ", 1)[-1]


def demo_settings(settings: Settings) -> Settings:
    """The demo's own database unless DATABASE_URL was set: console spend never mixes into
    the ledger `sora-bot run` keeps in the same directory."""
    if settings.database_explicit:
        return settings
    return settings.model_copy(update={"database_url": DEMO_DATABASE_URL})


async def _async_main(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "demo":
        from sora_bot.demo import run_demo

        return await run_demo(
            demo_settings(settings),
            command=args.command_text,
            task_seconds=args.task_seconds,
            verbose=args.verbose,
        )
    if args.command == "run":
        from sora_bot.runner import run_bot

        return await run_bot(settings)
    if args.command == "check":
        from sora_bot.checks import run_checks

        return await run_checks(settings)
    return await run_admin(settings, args)


if __name__ == "__main__":
    sys.exit(main())
