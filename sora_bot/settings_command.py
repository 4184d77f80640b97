"""`sora-bot admin settings PLATFORM:WORKSPACE [KEY VALUE] [--json]`: a workspace's settings.

Without KEY VALUE: every key (bot/domain/workspace_settings.py `SETTING_KEYS`, in order), its
value and where it comes from — `workspace` (set for it) or `environment` (the variable named
in `env`). With KEY VALUE: the change (VALUE `default` = back to the environment's), through
`SoraService.change_workspace_setting`, whose audit row names `cli:<os user>`; then one line
saying what changed (or, with `--json`, the whole settings after it).

`--json`: one object — `platform`, `workspace`, `settings`: a list of {`key`, `value`,
`source`, `env`} in key order; credit values are exact JSON numbers (sora_bot/output.py), the
caps integers, an unset admin channel null. A bad target, key or value: one line on stderr,
exit 2, nothing written (the service validates before it writes). A change for a workspace
nobody ever used the bot in (most often a mistyped id) is made, with a warning on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bot.domain.errors import InputError
from bot.domain.targets import parse_target
from bot.domain.workspace_settings import SETTING_KEYS, spec_of
from sora_bot.output import print_json, print_table

if TYPE_CHECKING:
    from bot.domain.workspace_settings import EffectiveSettings
    from bot.services.service import SoraService

COLUMNS = ("key", "value", "source", "env")


def add_settings_parser(admin: Any) -> None:
    """Register `settings` on the `admin` subparsers."""
    keys = ", ".join(spec.key for spec in SETTING_KEYS)
    command = admin.add_parser(
        "settings",
        help="a workspace's settings (show, or change one: KEY VALUE; VALUE default resets)",
        description=f"Show a workspace's settings, or change one. Keys: {keys}.",
    )
    command.add_argument("target", metavar="PLATFORM:WORKSPACE")
    command.add_argument("key", nargs="?", metavar="KEY")
    command.add_argument("value", nargs="?", metavar="VALUE", help="the value; default resets")
    command.add_argument("--json", action="store_true")


def settings_json(found: EffectiveSettings) -> dict[str, Any]:
    return {
        "platform": found.platform,
        "workspace": found.workspace,
        "settings": [
            {
                "key": spec.key,
                "value": found.value(spec.key),
                "source": found.source(spec.key),
                "env": spec.env_for(found.platform),
            }
            for spec in SETTING_KEYS
        ],
    }


async def run_settings(service: SoraService, actor: str, args: argparse.Namespace) -> int:
    target = parse_target(args.target, "workspace")
    where = (target.platform, target.workspace)
    if args.key is not None and args.value is None:
        raise InputError(
            f"Give the value too: sora-bot admin settings {target.key} {args.key} VALUE "
            "(default: back to the environment's value).",
            field="value",
        )
    if args.key is None:
        found = await service.workspace_settings(actor, *where)
    else:
        before = await service.workspace_settings(actor, *where)
        found = await service.change_workspace_setting(actor, *where, args.key, args.value)
        if not await service.has_history(*where):
            print(
                f"warning: {target.key}: nobody in this workspace ever used the bot (no job, "
                "request or credits yet); check the id for a typo (README: Finding ids).",
                file=sys.stderr,
            )
        if not args.json:
            print(_change_line(target.key, spec_of(args.key).key, before, found))
            return 0
    if args.json:
        print_json(settings_json(found))
    else:
        rows = [
            {
                "key": spec.key,
                "value": found.text(spec.key),
                "source": found.source(spec.key),
                "env": spec.env_for(found.platform),
            }
            for spec in SETTING_KEYS
        ]
        print_table(rows, COLUMNS)
    return 0


def _change_line(where: str, key: str, before: EffectiveSettings, after: EffectiveSettings) -> str:
    was = f" (was {before.text(key)})" if before.text(key) != after.text(key) else ""
    if after.source(key) == "environment":
        env = spec_of(key).env_for(after.platform)
        return f"{where}: {key} back to the environment's {env}: {after.text(key)}{was}"
    return f"{where}: {key} set to {after.text(key)}{was}"
