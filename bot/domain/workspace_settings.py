"""Per-workspace settings: what each key means, how its typed text is read, and the effective
values of one (platform, workspace) — the workspace's own where it set one, else the
environment's.

    SETTING_KEYS       the keys, in the order every surface shows them (`SettingSpec`s)
    parse_setting      text as typed ("500", "week", "Europe/Paris", "C0123") → the value,
                       or InputError naming the key and what it accepts
    EffectiveSettings  one workspace's values + which of them are its own (`overridden`)

Invariants (pure: no I/O):
- The rules for a value are the environment's rules: bot/infra/config.py validates
  USER_CREDITS_PER_PERIOD, TEAM_CREDITS_PER_PERIOD, BUDGET_PERIOD, BUDGET_TIMEZONE and the
  MAX_JOBS_* bounds with the functions and constants of this module, so a value accepted in
  one place is accepted in the other.
- "default" (any case) is never a value: it means "back to the environment's value", and the
  owner (bot/services/workspace_settings.py) deletes the row. "none" is a value only for
  `admin_channel` (this workspace has no admin channel: requests go to the admins' DMs).
- `EffectiveSettings` is frozen: a change makes a new one. A workspace's text that no longer
  reads (a model the catalog dropped) counts as not set (`effective` skips it and says so).
- Precedence of the money figures: an explicit limit (`/sora admin budget`, `set-limit`,
  role limits: the ledger's `limits` rows) > this workspace's setting > the environment.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.periods import Period, period_containing, period_for

BUDGET_PERIODS = ("day", "week", "month")
#: Bounds of MAX_JOBS_PER_USER and MAX_JOBS_PER_WORKSPACE (environment and settings alike).
JOBS_PER_USER = (1, 100)
JOBS_PER_WORKSPACE = (1, 1000)
#: The word that resets a key to the environment's value.
RESET = "default"
#: The word that turns the workspace's admin channel off.
NO_CHANNEL = "none"


#: The platforms with their own `{PLATFORM}_…` variables (DISCORD_ADMIN_CHANNEL, SLACK_…).
PER_PLATFORM_ENV = ("discord", "slack")


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    help: str
    env: str  # the environment variable it defaults from ("{PLATFORM}": per platform)

    def env_for(self, platform: str) -> str:
        """The variable's name on `platform`; "-" where that platform has none (the console
        has no admin channel variable)."""
        if "{PLATFORM}" in self.env and platform not in PER_PLATFORM_ENV:
            return "-"
        return self.env.replace("{PLATFORM}", platform.upper())


SETTING_KEYS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "default_model",
        "Default model",
        "The model of a request that names none (--model); one EvoLink offers.",
        "DEFAULT_MODEL",
    ),
    SettingSpec(
        "user_credits_per_period",
        "Allowance per person",
        "Credits each person may spend per period, unless they have their own limit.",
        "USER_CREDITS_PER_PERIOD",
    ),
    SettingSpec(
        "team_credits_per_period",
        "Team budget",
        "Credits the whole workspace may spend per period (0 = no team cap), unless a team "
        "budget was set (admin budget).",
        "TEAM_CREDITS_PER_PERIOD",
    ),
    SettingSpec(
        "budget_period",
        "Budget period",
        "How often budgets start again: day, week (from Monday) or month.",
        "BUDGET_PERIOD",
    ),
    SettingSpec(
        "budget_timezone",
        "Budget time zone",
        "The IANA time zone periods start in, e.g. UTC or Europe/Paris.",
        "BUDGET_TIMEZONE",
    ),
    SettingSpec(
        "admin_channel",
        "Admin channel",
        "Where approval requests and alerts go (a channel id; none = the admins' DMs).",
        "{PLATFORM}_ADMIN_CHANNEL",
    ),
    SettingSpec(
        "max_jobs_per_user",
        "Videos at once per person",
        f"How many videos one person may have rendering at once "
        f"({JOBS_PER_USER[0]}-{JOBS_PER_USER[1]}); more wait in the queue.",
        "MAX_JOBS_PER_USER",
    ),
    SettingSpec(
        "max_jobs_per_workspace",
        "Videos at once in the workspace",
        f"How many videos the workspace may have rendering at once "
        f"({JOBS_PER_WORKSPACE[0]}-{JOBS_PER_WORKSPACE[1]}); more wait in the queue.",
        "MAX_JOBS_PER_WORKSPACE",
    ),
)
SPECS: dict[str, SettingSpec] = {spec.key: spec for spec in SETTING_KEYS}
KEYS: tuple[str, ...] = tuple(SPECS)

# -- the rules (shared with bot/infra/config.py: ValueError in the environment's words) -------


def credits_value(value: Any) -> Decimal:
    """A number of credits: zero or more, at most three decimals."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"must be a number of credits like 300 or 12.5, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"must be zero or a positive number of credits, got {value!r}")
    if amount != amount.quantize(Decimal("0.001")):
        raise ValueError(f"has at most three decimals, got {value!r}")
    return amount


def period_value(value: str) -> str:
    value = value.strip().lower()
    if value not in BUDGET_PERIODS:
        raise ValueError(f"must be one of {', '.join(BUDGET_PERIODS)}, got {value!r}")
    return value


def timezone_value(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"must be an IANA time zone like UTC or Europe/Paris, got {value!r}"
        ) from None
    return value


def count_value(value: Any, bounds: tuple[int, int]) -> int:
    low, high = bounds
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
        raise ValueError(f"must be a whole number from {low} to {high}, got {value!r}")
    return int(text)


_DISCORD_CHANNEL = re.compile(r"<#([0-9]{15,22})>|([0-9]{15,22})")
_SLACK_CHANNEL = re.compile(r"<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>|([CG][A-Z0-9]{2,})")


def channel_value(platform: str, value: str) -> str | None:
    """An admin channel of `platform`: Discord a channel id (or its <#id> mention), Slack a
    channel id like C0123ABCD (or its <#C0123ABCD|name> mention); "none": no channel."""
    text = value.strip()
    if text.lower() == NO_CHANNEL:
        return None
    if platform == "discord":
        found = _DISCORD_CHANNEL.fullmatch(text)
        if found is None:
            raise ValueError(
                f"must be a Discord channel id like 123456789012345678 (Copy Channel ID) or "
                f"none, got {value!r}"
            )
        return found.group(1) or found.group(2)
    if platform == "slack":
        found = _SLACK_CHANNEL.fullmatch(text)
        if found is None:
            raise ValueError(
                f"must be a Slack channel id like C0123ABCD (the channel's details, at the "
                f"bottom) or none, got {value!r}"
            )
        return found.group(1) or found.group(2)
    if not text or len(text) > 80 or any(c.isspace() for c in text):
        raise ValueError(f"must be a channel name without spaces or none, got {value!r}")
    return text


# -- reading typed text ------------------------------------------------------------------------


def spec_of(key: str) -> SettingSpec:
    """The key's spec; InputError listing the keys otherwise."""
    spec = SPECS.get(key.strip().lower().replace("-", "_"))
    if spec is None:
        raise InputError(
            f"{key!r} is not a setting. Settings: {', '.join(KEYS)}.", field="key", valid=KEYS
        )
    return spec


def is_reset(text: str) -> bool:
    return text.strip().lower() == RESET


def parse_setting(key: str, text: str, *, platform: str, catalog: Catalog) -> object:
    """The value `text` gives `key` in a workspace of `platform`; InputError naming the key and
    what it accepts otherwise. ("default" is not a value: see `is_reset`.)"""
    spec = spec_of(key)
    try:
        return _parse(spec.key, text, platform, catalog)
    except ValueError as exc:
        valid: tuple[str, ...] = BUDGET_PERIODS if spec.key == "budget_period" else ()
        if spec.key == "default_model":
            valid = tuple(catalog.names(selectable_only=True))
        raise InputError(
            f"{spec.key} {exc} (or {RESET}: the environment's {spec.env_for(platform)}).",
            field=spec.key,
            valid=valid,
        ) from None


def _parse(key: str, text: str, platform: str, catalog: Catalog) -> object:
    if not text.strip():
        raise ValueError("needs a value, got nothing")
    if key == "default_model":
        model = catalog.find(text)
        if model is None or not model.selectable:
            names = ", ".join(catalog.names(selectable_only=True))
            raise ValueError(
                f"must be a model that can be ordered directly ({names}), got {text!r}"
            )
        return model.name
    if key in ("user_credits_per_period", "team_credits_per_period"):
        return credits_value(text)
    if key == "budget_period":
        return period_value(text)
    if key == "budget_timezone":
        return timezone_value(text.strip())
    if key == "admin_channel":
        return channel_value(platform, text)
    if key == "max_jobs_per_user":
        return count_value(text, JOBS_PER_USER)
    return count_value(text, JOBS_PER_WORKSPACE)


def stored_text(key: str, value: object) -> str:
    """A parsed value as the row stores it (read back by `parse_setting`)."""
    if value is None:
        return NO_CHANNEL
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    return str(value)


# -- the effective settings of one workspace -----------------------------------------------


class EffectiveSettings(BaseModel):
    """One workspace's settings: its own where it set them (`overridden`), else the
    environment's."""

    model_config = ConfigDict(frozen=True)

    platform: str
    workspace: str
    default_model: str
    user_credits_per_period: Decimal
    team_credits_per_period: Decimal
    budget_period: str
    budget_timezone: str
    admin_channel: str | None
    max_jobs_per_user: int
    max_jobs_per_workspace: int
    overridden: frozenset[str] = frozenset()

    def value(self, key: str) -> object:
        return getattr(self, spec_of(key).key)

    def source(self, key: str) -> str:
        """Where the value comes from: "workspace" (its own) or "environment"."""
        return "workspace" if spec_of(key).key in self.overridden else "environment"

    def text(self, key: str) -> str:
        """The value as people read it ("-" for no admin channel)."""
        value = self.value(key)
        return "-" if value is None else stored_text(key, value)

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.budget_timezone)

    def period_at(self, moment: dt.datetime) -> Period:
        """The budget period containing `moment` in this workspace."""
        return period_for(moment, self.budget_period, self.timezone)

    def period_containing(self, day: dt.date) -> Period:
        return period_containing(day, self.budget_period, self.timezone)


def effective(
    platform: str,
    workspace: str,
    defaults: Mapping[str, object],
    stored: Mapping[str, str],
    catalog: Catalog,
) -> tuple[EffectiveSettings, list[str]]:
    """The workspace's settings from the environment's `defaults` (every key) and its stored
    texts; also the keys whose stored text no longer reads (they take the default)."""
    values = dict(defaults)
    own: set[str] = set()
    unreadable: list[str] = []
    for key, text in stored.items():
        if key not in SPECS:
            continue
        try:
            values[key] = _parse(key, text, platform, catalog)
        except ValueError:
            unreadable.append(key)
            continue
        own.add(key)
    settings = EffectiveSettings(
        platform=platform, workspace=workspace, overridden=frozenset(own), **values
    )
    return settings, unreadable
