"""SQL on `slack_installations` and `slack_oauth_states` (migration 13) — written only by
bot.services.installs, for the Slack adapter's installation and OAuth state stores.

Invariants:
- A row is keyed by (kind, enterprise_id, team_id, user_id), '' standing for "none"; saving
  the same key again replaces the row (a re-install, a rotated token), never adds one.
- `data_json` is opaque here: the adapter seals the tokens in it before it arrives.
- A state is consumed by deleting it: of two requests consuming the same state, exactly one
  deletes the row (`rowcount`), so a state works once; an expired state is deleted and refused.
- Timestamps are ISO UTC (`now_iso` form): text order is time order.
"""

from __future__ import annotations

from bot.infra.store.engine import Tx, one, rows


async def put(
    tx: Tx,
    kind: str,
    enterprise_id: str,
    team_id: str,
    user_id: str,
    data_json: str,
    installed_at: str,
) -> None:
    await tx.execute(
        "INSERT INTO slack_installations"
        " (kind, enterprise_id, team_id, user_id, data_json, installed_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, enterprise_id, team_id, user_id) DO UPDATE SET"
        " data_json = excluded.data_json, installed_at = excluded.installed_at",
        (kind, enterprise_id, team_id, user_id, data_json, installed_at),
    )


async def latest(
    tx: Tx, kind: str, enterprise_id: str | None, team_id: str, user_id: str | None
) -> str | None:
    """The newest `data_json` of `kind` for the team (and enterprise, and user, when given)."""
    sql = "SELECT data_json FROM slack_installations WHERE kind = ? AND team_id = ?"
    args: list[str] = [kind, team_id]
    if enterprise_id is not None:
        sql += " AND enterprise_id = ?"
        args.append(enterprise_id)
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    found = await one(tx, sql + " ORDER BY installed_at DESC LIMIT 1", tuple(args))
    return None if found is None else str(found["data_json"])


async def delete(
    tx: Tx, kind: str | None, enterprise_id: str | None, team_id: str, user_id: str | None
) -> int:
    """Delete the team's rows (of `kind`, of `user_id`, when given); how many went."""
    sql = "DELETE FROM slack_installations WHERE team_id = ?"
    args: list[str] = [team_id]
    if kind is not None:
        sql += " AND kind = ?"
        args.append(kind)
    if enterprise_id is not None:
        sql += " AND enterprise_id = ?"
        args.append(enterprise_id)
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    cur = await tx.execute(sql, tuple(args))
    return cur.rowcount


async def teams(tx: Tx, kind: str) -> list[str]:
    """Team ids that have a row of `kind`, sorted."""
    found = await rows(
        tx,
        "SELECT DISTINCT team_id FROM slack_installations WHERE kind = ? ORDER BY team_id",
        (kind,),
    )
    return [str(r["team_id"]) for r in found]


async def add_state(tx: Tx, state: str, expires_at: str) -> None:
    await tx.execute(
        "INSERT INTO slack_oauth_states (state, expires_at) VALUES (?, ?)", (state, expires_at)
    )


async def take_state(tx: Tx, state: str, now: str) -> bool:
    """Consume `state`: True once if it exists and has not expired; it is gone after."""
    found = await one(tx, "SELECT expires_at FROM slack_oauth_states WHERE state = ?", (state,))
    if found is None:
        return False
    cur = await tx.execute("DELETE FROM slack_oauth_states WHERE state = ?", (state,))
    return cur.rowcount == 1 and str(found["expires_at"]) > now


async def drop_expired_states(tx: Tx, now: str) -> int:
    cur = await tx.execute("DELETE FROM slack_oauth_states WHERE expires_at <= ?", (now,))
    return cur.rowcount
