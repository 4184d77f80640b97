"""The owner of per-workspace settings: each (platform, workspace)'s effective settings — its
own values (table `workspace_settings`, SQL in bot/infra/store/workspace_setting_rows.py) over
the environment's (`EnvDefaults`, from bot/infra/config.py) — and every change of them.

Invariants:
- Nothing else writes `workspace_settings`. A change is validated first (the domain's rules,
  bot/domain/workspace_settings.py; a default model must also be one EvoLink's current price
  list offers): a refused change writes nothing. An accepted change writes its row (or deletes
  it: "default") and its audit row (action `set-setting`, target `platform:workspace`, reason
  `key=value`) through the ledger's audit writer in ONE transaction.
- Decisions about money and slots read the settings inside their own transaction (`read_in`,
  `caps_in`: one indexed read), so every replica decides on the committed values.
- `cached` (synchronous: the default model while parsing, the admin channel) answers from a
  per-process snapshot: loaded at start, refreshed for a workspace by every `read_in` and by
  the change itself, and read again on the `sora_settings` word (`store.notify`) every change
  sends after its commit, so a change made on one replica reaches the others' snapshots within
  a read; a lost word is covered by reloading a snapshot older than `STALE_SECONDS` in the
  background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.offer import is_offered, orderable
from bot.domain.pricing import PriceList
from bot.domain.workspace_settings import (
    KEYS,
    EffectiveSettings,
    effective,
    is_reset,
    parse_setting,
    spec_of,
    stored_text,
)
from bot.infra.store import Store, Tx
from bot.infra.store import workspace_setting_rows as sql

if TYPE_CHECKING:
    from bot.infra.config import Settings

log = logging.getLogger(__name__)

CHANNEL = "sora_settings"
STALE_SECONDS = 60.0
CAP_KEYS = ("max_jobs_per_user", "max_jobs_per_workspace")
PERIOD_KEYS = ("budget_period", "budget_timezone")

#: The ledger's audit writer: (tx, actor, action, target, amount_uc, reason).
AuditWriter = Callable[[Tx, str, str, str, int | None, str], Awaitable[None]]


@dataclass(frozen=True)
class EnvDefaults:
    """The environment's value of every key (the admin channel per platform)."""

    default_model: str
    user_credits_per_period: Decimal
    team_credits_per_period: Decimal
    budget_period: str
    budget_timezone: str
    max_jobs_per_user: int
    max_jobs_per_workspace: int
    admin_channels: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> EnvDefaults:
        return cls(
            default_model=settings.default_model,
            user_credits_per_period=settings.user_credits_per_period,
            team_credits_per_period=settings.team_credits_per_period,
            budget_period=settings.budget_period,
            budget_timezone=settings.budget_timezone,
            max_jobs_per_user=settings.max_jobs_per_user,
            max_jobs_per_workspace=settings.max_jobs_per_workspace,
            admin_channels={
                "discord": settings.discord_admin_channel,
                "slack": settings.slack_admin_channel,
            },
        )

    def with_budgets(self, user: Decimal, team: Decimal, period: str, timezone: str) -> EnvDefaults:
        return replace(
            self,
            user_credits_per_period=user,
            team_credits_per_period=team,
            budget_period=period,
            budget_timezone=timezone,
        )

    def for_platform(self, platform: str) -> dict[str, object]:
        return {
            "default_model": self.default_model,
            "user_credits_per_period": self.user_credits_per_period,
            "team_credits_per_period": self.team_credits_per_period,
            "budget_period": self.budget_period,
            "budget_timezone": self.budget_timezone,
            "admin_channel": self.admin_channels.get(platform),
            "max_jobs_per_user": self.max_jobs_per_user,
            "max_jobs_per_workspace": self.max_jobs_per_workspace,
        }


class WorkspaceSettings:
    def __init__(
        self,
        store: Store,
        defaults: EnvDefaults,
        catalog: Catalog,
        prices: Callable[[], PriceList] | None = None,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.catalog = catalog
        self.prices = prices
        self._snapshot: dict[tuple[str, str], dict[str, str]] = {}
        self._loaded_at = float("-inf")
        self._listening = False
        self._reloading: asyncio.Task[None] | None = None
        self._refreshing: set[asyncio.Task[None]] = set()
        self._warned: set[tuple[str, str, str, str]] = set()

    # -- reading -----------------------------------------------------------------------------

    def build(self, platform: str, workspace: str, stored: Mapping[str, str]) -> EffectiveSettings:
        found, unreadable = effective(
            platform, workspace, self.defaults.for_platform(platform), stored, self.catalog
        )
        for key in unreadable:
            if (platform, workspace, key, stored[key]) in self._warned:
                continue  # once per process, not once per admission
            self._warned.add((platform, workspace, key, stored[key]))
            log.warning(
                "%s:%s: the stored %s %r no longer reads; the environment's value applies",
                platform,
                workspace,
                key,
                stored[key],
            )
        return found

    async def read_in(self, tx: Tx, platform: str, workspace: str) -> EffectiveSettings:
        """The workspace's settings as committed (inside the caller's transaction)."""
        stored = await sql.values(tx, platform, workspace)
        self._snapshot[(platform, workspace)] = stored
        return self.build(platform, workspace, stored)

    async def read(self, platform: str, workspace: str) -> EffectiveSettings:
        async with self.store.reading() as tx:
            return await self.read_in(tx, platform, workspace)

    def cached(self, platform: str, workspace: str) -> EffectiveSettings:
        """The workspace's settings from this process's snapshot (module docstring)."""
        if time.monotonic() - self._loaded_at > STALE_SECONDS:
            self._reload_soon()
        return self.build(platform, workspace, self._snapshot.get((platform, workspace), {}))

    async def caps_in(self, tx: Tx, workspaces: Iterable[str]) -> dict[str, tuple[int, int]]:
        """For each "platform:workspace" named: (max jobs per user, max jobs per workspace)."""
        stored: dict[str, dict[str, str]] = {}
        for platform, workspace, key, value in await sql.with_keys(tx, CAP_KEYS):
            stored.setdefault(f"{platform}:{workspace}", {})[key] = value
        caps: dict[str, tuple[int, int]] = {}
        for where in set(workspaces):
            platform, _, workspace = where.partition(":")
            found = self.build(platform, workspace, stored.get(where, {}))
            caps[where] = (found.max_jobs_per_user, found.max_jobs_per_workspace)
        return caps

    async def overriding_in(self, tx: Tx, keys: Iterable[str]) -> set[tuple[str, str]]:
        """The workspaces that set any of `keys`."""
        return {(p, w) for p, w, _k, _v in await sql.with_keys(tx, keys)}

    async def own_periods(self) -> list[EffectiveSettings]:
        """The workspaces with their own budget period or time zone, in order."""
        async with self.store.reading() as tx:
            found = await self.overriding_in(tx, PERIOD_KEYS)
            return [await self.read_in(tx, *where) for where in sorted(found)]

    # -- the snapshot ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the snapshot and listen for changes made by any process."""
        await self.reload()
        if not self._listening:
            self._listening = True
            await self.store.listen(CHANNEL, self._changed)

    async def reload(self) -> None:
        async with self.store.reading() as tx:
            found = await sql.every(tx)
        snapshot: dict[tuple[str, str], dict[str, str]] = {}
        for platform, workspace, key, value in found:
            snapshot.setdefault((platform, workspace), {})[key] = value
        self._snapshot = snapshot
        self._loaded_at = time.monotonic()

    def _changed(self, payload: str) -> None:
        """A process changed (platform, workspace): read its rows again (after that commit)."""
        platform, _, workspace = payload.partition(":")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._refresh(platform, workspace), name="settings-refresh")
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, platform: str, workspace: str) -> None:
        try:
            await self.read(platform, workspace)
        except Exception as exc:  # the snapshot goes stale and is reloaded whole
            self._loaded_at = float("-inf")
            log.warning("could not read %s:%s's settings again: %s", platform, workspace, exc)

    def _reload_soon(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._loaded_at = time.monotonic()  # one reload at a time, not one per read
        self._reloading = loop.create_task(self._reload_logged(), name="settings-reload")

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:  # the next stale read tries again
            self._loaded_at = float("-inf")
            log.warning("could not reload the workspace settings: %s", exc)

    # -- changing ------------------------------------------------------------------------------

    def check(self, platform: str, key: str, text: str) -> tuple[str, str | None]:
        """(the key, the text to store — None: back to the environment's), or InputError."""
        spec = spec_of(key)
        if is_reset(text):
            return spec.key, None
        value = parse_setting(spec.key, text, platform=platform, catalog=self.catalog)
        if spec.key == "default_model" and self.prices is not None:
            current = self.prices()
            if not is_offered(current, str(value)):
                offered = orderable(self.catalog, current)
                raise InputError(
                    f"default_model {value} is not offered by EvoLink's price list now; "
                    f"choose one of: {', '.join(offered)}.",
                    field="default_model",
                    valid=offered,
                )
        return spec.key, stored_text(spec.key, value)

    async def change(
        self,
        actor: str,
        platform: str,
        workspace: str,
        key: str,
        text: str,
        *,
        audit: AuditWriter,
    ) -> EffectiveSettings:
        """Set `key` for the workspace from its typed `text` ("default": back to the
        environment's), with its audit row, in one transaction; the settings after it."""
        key, stored = self.check(platform, key, text)
        async with self.store.transaction() as tx:
            if stored is None:
                await sql.drop(tx, platform, workspace, key)
            else:
                await sql.put(tx, platform, workspace, key, stored, actor)
            reason = f"{key}={'default' if stored is None else stored}"
            await audit(tx, actor, "set-setting", f"{platform}:{workspace}", None, reason)
            now_stored = await sql.values(tx, platform, workspace)
        self._snapshot[(platform, workspace)] = now_stored
        after = self.build(platform, workspace, now_stored)
        try:
            await self.store.notify(CHANNEL, f"{platform}:{workspace}")
        except Exception as exc:  # a hint: the other processes' snapshots go stale instead
            log.warning("could not tell the other processes about a settings change: %s", exc)
        log.info("%s:%s: %s set by %s", platform, workspace, reason, actor)
        return after


__all__ = ["KEYS", "AuditWriter", "EnvDefaults", "WorkspaceSettings"]
