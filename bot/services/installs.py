"""Installation records: the rows behind a chat platform's OAuth installs (today Slack's:
adapters/slack/installations.py), kept in the product's store on either engine.
SQL in bot/infra/store/installation_rows.py.

    records = Installs(store)
    await records.save("bot", "", "T0123", "", data_json)      # a re-install replaces the row
    await records.find("bot", None, "T0123", None)             # the newest data_json, or None
    await records.delete(None, None, "T0123", None)            # every row of the workspace
    await records.issue_state("s3cret", expires_at)            # an OAuth state…
    await records.consume_state("s3cret")                      # …True once, before it expires

Invariants:
- The records are opaque text: whoever saves them seals what must not be read (tokens).
- Each call is one transaction; `consume_state` reads and deletes in the same one, so a state
  is accepted at most once across every replica on the database.
- Deleting a workspace's installation touches nothing else: its jobs, ledger and settings
  stay, so a re-install (same team id) finds its history again.
"""

from __future__ import annotations

from bot.infra.store import Store, now_iso
from bot.infra.store import installation_rows as sql


class Installs:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def save(
        self, kind: str, enterprise_id: str, team_id: str, user_id: str, data_json: str
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.put(tx, kind, enterprise_id, team_id, user_id, data_json, now_iso())

    async def find(
        self, kind: str, enterprise_id: str | None, team_id: str, user_id: str | None
    ) -> str | None:
        async with self.store.reading() as tx:
            return await sql.latest(tx, kind, enterprise_id, team_id, user_id)

    async def delete(
        self, kind: str | None, enterprise_id: str | None, team_id: str, user_id: str | None
    ) -> int:
        async with self.store.transaction() as tx:
            return await sql.delete(tx, kind, enterprise_id, team_id, user_id)

    async def teams(self, kind: str) -> list[str]:
        async with self.store.reading() as tx:
            return await sql.teams(tx, kind)

    async def issue_state(self, state: str, expires_at: str) -> None:
        async with self.store.transaction() as tx:
            await sql.drop_expired_states(tx, now_iso())
            await sql.add_state(tx, state, expires_at)

    async def consume_state(self, state: str) -> bool:
        async with self.store.transaction() as tx:
            return await sql.take_state(tx, state, now_iso())
