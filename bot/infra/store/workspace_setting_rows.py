"""SQL on `workspace_settings` (migration 12) — written only by bot.services.workspace_settings.

One row per (platform, workspace, key) a workspace set; a key without a row takes the
environment's value. `value` is the setting's text form (bot/domain/workspace_settings.py reads
it back). The caller decides inside its own transaction, so a change and its audit row commit
together. Reads by (platform, workspace) use the primary key's prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.infra.store.engine import Tx, now_iso, rows

#: (platform, workspace, key, value)
SettingRow = tuple[str, str, str, str]


async def values(tx: Tx, platform: str, workspace: str) -> dict[str, str]:
    """The keys this workspace set, with their stored text."""
    found = await rows(
        tx,
        "SELECT key, value FROM workspace_settings WHERE platform = ? AND workspace = ?",
        (platform, workspace),
    )
    return {str(r[0]): str(r[1]) for r in found}


async def with_keys(tx: Tx, keys: Iterable[str]) -> list[SettingRow]:
    """Every workspace's rows for `keys` (e.g. the concurrency caps, for the dispatcher)."""
    wanted = tuple(keys)
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    found = await rows(
        tx,
        "SELECT platform, workspace, key, value FROM workspace_settings"
        f" WHERE key IN ({marks}) ORDER BY platform, workspace, key",
        wanted,
    )
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in found]


async def every(tx: Tx) -> list[SettingRow]:
    """All rows (the per-process snapshot; the table has at most a few rows per workspace)."""
    found = await rows(
        tx,
        "SELECT platform, workspace, key, value FROM workspace_settings"
        " ORDER BY platform, workspace, key",
    )
    return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in found]


async def put(tx: Tx, platform: str, workspace: str, key: str, value: str, by: str) -> None:
    await tx.execute(
        "INSERT INTO workspace_settings (platform, workspace, key, value, updated_by, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, key) DO UPDATE SET"
        " value = excluded.value, updated_by = excluded.updated_by,"
        " updated_at = excluded.updated_at",
        (platform, workspace, key, value, by, now_iso()),
    )


async def drop(tx: Tx, platform: str, workspace: str, key: str) -> bool:
    """Remove the workspace's value of `key` (back to the environment's); False: none set."""
    cursor = await tx.execute(
        "DELETE FROM workspace_settings WHERE platform = ? AND workspace = ? AND key = ?",
        (platform, workspace, key),
    )
    return cursor.rowcount > 0
