"""Whom an operator's command names: `PLATFORM:WORKSPACE:USER`, `PLATFORM:WORKSPACE`, or a
Discord role `discord:GUILD:ROLE` (the `sora-bot admin` quota commands).

Invariants:
- The platform is one the bot serves (`PLATFORMS`); a typo (`slak`) is refused, never stored
  as a new platform nobody will ever use.
- Roles exist only where the platform has them (`ROLE_PLATFORMS`: Discord).
- Every refusal is an `InputError` whose example has the shape the argument asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.errors import InputError

#: The platforms the bot serves: Discord and Slack, and the console of `sora-bot demo`.
PLATFORMS = ("discord", "slack", "console")
#: Platforms with roles a role allowance can name.
ROLE_PLATFORMS = ("discord",)

TargetKind = Literal["user", "workspace", "role"]

SHAPES: dict[TargetKind, str] = {
    "user": "PLATFORM:WORKSPACE:USER",
    "workspace": "PLATFORM:WORKSPACE",
    "role": "discord:GUILD:ROLE",
}
EXAMPLES: dict[TargetKind, str] = {
    "user": "slack:T0123ABCD:U0456EFGH or discord:123456789012345678:234567890123456789",
    "workspace": "slack:T0123ABCD or discord:123456789012345678",
    "role": "discord:123456789012345678:345678901234567890",
}


@dataclass(frozen=True)
class Target:
    platform: str
    workspace: str
    name: str | None = None  # the user or the role; None for a workspace

    @property
    def key(self) -> str:
        parts = (self.platform, self.workspace) + ((self.name,) if self.name else ())
        return ":".join(parts)


def parse_target(text: str, kind: TargetKind) -> Target:
    """`text` as a `kind` target, or InputError saying what was expected, with an example."""
    pieces = text.strip().split(":")
    count = 2 if kind == "workspace" else 3
    if len(pieces) != count or not all(p.strip() for p in pieces):
        raise InputError(f"{text!r} is not {SHAPES[kind]} (e.g. {EXAMPLES[kind]}).", field="target")
    platform, workspace = pieces[0].strip().lower(), pieces[1].strip()
    if platform not in PLATFORMS:
        raise InputError(
            f"{pieces[0]!r} is not a platform the bot serves: use {_names(PLATFORMS)} "
            f"(e.g. {EXAMPLES[kind]}).",
            field="target",
        )
    if kind == "role" and platform not in ROLE_PLATFORMS:
        raise InputError(
            f"{platform} has no roles: role limits exist on {_names(ROLE_PLATFORMS)} only "
            f"(e.g. {EXAMPLES['role']}); give one person a limit with set-limit.",
            field="target",
        )
    name = pieces[2].strip() if count == 3 else None
    return Target(platform=platform, workspace=workspace, name=name)


def _names(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
