"""Per-workspace settings on each engine: the keys and their rules; two workspaces with
different allowances, team budgets, periods and concurrency caps each get their own; a change
is one audit row; bad values change nothing; "default" gives the environment's value back.
(Through the service and across processes: test_workspace_settings_service.py.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import BudgetError, InputError
from bot.domain.models import Requester, Surface, VideoRequest
from bot.domain.offer import orderable, quote_request
from bot.domain.pricing import PriceList
from bot.domain.workspace_settings import KEYS, SETTING_KEYS, parse_setting
from bot.infra.store import Store, open_store
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger
from bot.services.workspace_settings import EnvDefaults, WorkspaceSettings

CATALOG = Catalog.load()
PRICES = PriceList.load()
MODELS = orderable(CATALOG, PRICES)
CLI = "cli:tester"
# Monday 2026-11-30 12:00 UTC: a new week began, the month did not.
MONDAY = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def env(**changes: object) -> EnvDefaults:
    values: dict[str, object] = {
        "default_model": MODELS[0],
        "user_credits_per_period": Decimal(300),
        "team_credits_per_period": Decimal(0),
        "budget_period": "month",
        "budget_timezone": "UTC",
        "max_jobs_per_user": 2,
        "max_jobs_per_workspace": 8,
        "admin_channels": {"slack": "CENVADMIN", "discord": None},
    }
    values.update(changes)
    return EnvDefaults(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.close()


def book_for(store: Store, defaults: EnvDefaults | None = None) -> JobBook:
    defaults = defaults or env()
    owner = WorkspaceSettings(store, defaults, CATALOG, prices=lambda: PRICES)
    money = Ledger(
        store,
        default_limit=defaults.user_credits_per_period,
        default_team_budget=defaults.team_credits_per_period,
        period_kind=defaults.budget_period,
        timezone=ZoneInfo(defaults.budget_timezone),
        now=lambda: MONDAY,
        workspace_settings=owner,
    )
    return JobBook(store, money)


def a_request(model: str | None = None) -> tuple[VideoRequest, Decimal]:
    spec = CATALOG.get(model or MODELS[0])
    request = VideoRequest(
        model=spec.name,
        prompt="a lighthouse",
        duration=spec.default_duration,
        aspect_ratio=spec.default_aspect_ratio,
    )
    return request, quote_request(CATALOG, PRICES, request).credits


async def change(book: JobBook, where: tuple[str, str], key: str, value: str) -> object:
    owner = book.ledger.workspace_settings
    return await owner.change(CLI, *where, key, value, audit=book.ledger.audit_in)


async def audit_rows(store: Store) -> list[tuple[str, str, str, str]]:
    found = await store.fetchall("SELECT actor, action, target, reason FROM audit ORDER BY id")
    return [(r[0], r[1], r[2], r[3]) for r in found]


# -- the keys and their rules -------------------------------------------------------------------


def test_the_keys_are_the_contracts_in_order() -> None:
    assert KEYS == (
        "default_model",
        "user_credits_per_period",
        "team_credits_per_period",
        "budget_period",
        "budget_timezone",
        "admin_channel",
        "max_jobs_per_user",
        "max_jobs_per_workspace",
    )
    assert all(spec.label and spec.help and spec.env for spec in SETTING_KEYS)
    assert SETTING_KEYS[5].env_for("slack") == "SLACK_ADMIN_CHANNEL"
    assert SETTING_KEYS[5].env_for("console") == "-", "the console has no admin channel variable"


@pytest.mark.parametrize(
    ("key", "text", "words"),
    [
        ("budget_period", "fortnight", "day, week, month"),
        ("budget_timezone", "Mars/Olympus", "IANA time zone"),
        ("user_credits_per_period", "-5", "zero or a positive"),
        ("user_credits_per_period", "1.0001", "three decimals"),
        ("team_credits_per_period", "lots", "number of credits"),
        ("max_jobs_per_user", "0", "from 1 to 100"),
        ("max_jobs_per_workspace", "1001", "from 1 to 1000"),
        ("admin_channel", "#general", "channel id"),
        ("default_model", "no-such-model", "ordered directly"),
    ],
)
def test_a_bad_value_names_the_key_and_what_it_accepts(key: str, text: str, words: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_setting(key, text, platform="slack", catalog=CATALOG)
    assert refused.value.field == key
    assert str(refused.value).startswith(key) and words in str(refused.value)


def test_the_environment_and_a_setting_share_one_rule() -> None:
    from bot.domain.errors import ConfigError
    from bot.infra.config import load_settings

    with pytest.raises(ConfigError, match="BUDGET_PERIOD must be one of day, week, month"):
        load_settings(_env_file=None, budget_period="fortnight")
    with pytest.raises(InputError, match="budget_period must be one of day, week, month"):
        parse_setting("budget_period", "fortnight", platform="slack", catalog=CATALOG)


# -- the owner --------------------------------------------------------------------------------


async def test_a_change_is_one_audit_row_and_default_gives_the_environment_back(
    store: Store,
) -> None:
    book = book_for(store)
    owner = book.ledger.workspace_settings
    where = ("slack", "T1")
    before = await owner.read(*where)
    assert before.overridden == frozenset() and before.user_credits_per_period == 300

    after = await change(book, where, "user_credits_per_period", "12.50")
    assert after.user_credits_per_period == Decimal("12.5")  # type: ignore[attr-defined]
    assert (await owner.read(*where)).source("user_credits_per_period") == "workspace"
    assert (await owner.read("slack", "T2")).user_credits_per_period == 300  # not the other
    reset = await change(book, where, "user_credits_per_period", "Default")
    assert reset.user_credits_per_period == 300  # type: ignore[attr-defined]
    assert (await owner.read(*where)).overridden == frozenset()
    assert await audit_rows(store) == [
        (CLI, "set-setting", "slack:T1", "user_credits_per_period=12.5"),
        (CLI, "set-setting", "slack:T1", "user_credits_per_period=default"),
    ]


async def test_a_bad_value_changes_nothing(store: Store) -> None:
    book = book_for(store)
    where = ("slack", "T1")
    await change(book, where, "budget_period", "week")
    for key, text in [("budget_period", "fortnight"), ("no_such_key", "1"), ("admin_channel", "")]:
        with pytest.raises(InputError):
            await change(book, where, key, text)
    found = await book.ledger.workspace_settings.read(*where)
    assert found.budget_period == "week" and found.overridden == {"budget_period"}
    assert len(await audit_rows(store)) == 1


async def test_a_default_model_must_be_offered_by_the_price_list(store: Store) -> None:
    book = book_for(store)
    empty = PriceList(PRICES.meta, {}, "an empty list")
    book.ledger.workspace_settings.prices = lambda: empty
    with pytest.raises(InputError, match="not offered"):
        await change(book, ("slack", "T1"), "default_model", MODELS[0])
    assert await audit_rows(store) == []


# -- the consumers: admission, balances, periods -----------------------------------------------


async def test_two_workspaces_each_admit_by_their_own_allowance_and_team_budget(
    store: Store,
) -> None:
    book = book_for(store)
    request, quote = a_request()
    tight, roomy = ("t", "tight"), ("t", "roomy")
    await change(book, tight, "user_credits_per_period", str(quote - Decimal("0.001")))
    await change(book, roomy, "user_credits_per_period", str(quote * 2))
    alice = Requester(platform="t", workspace="tight", user="alice")
    bob = Requester(platform="t", workspace="roomy", user="bob")

    with pytest.raises(BudgetError) as refused:
        await book.accept(alice, request, Surface(), quote)
    assert refused.value.scope == "user"
    await book.accept(bob, request, Surface(), quote)
    await book.accept(bob, request, Surface(), quote)
    with pytest.raises(BudgetError):
        await book.accept(bob, request, Surface(), quote)
    assert (await book.ledger.balance(alice)).limit == quote - Decimal("0.001")
    assert (await book.ledger.balance(bob)).held == quote * 2

    # A team budget setting caps the workspace; a budget an admin set (limits) beats it.
    await change(book, roomy, "team_credits_per_period", str(quote * 2))
    carol = Requester(platform="t", workspace="roomy", user="carol")
    with pytest.raises(BudgetError) as team_refused:
        await book.accept(carol, request, Surface(), quote)
    assert team_refused.value.scope == "team"
    await book.ledger.set_team_budget(CLI, "t", "roomy", quote * 3)
    await book.accept(carol, request, Surface(), quote)
    assert (await book.ledger.balance(carol)).team_budget == quote * 3
    # …and a person's own limit beats the workspace's allowance setting.
    await book.ledger.set_limit(CLI, alice, quote)
    await book.accept(alice, request, Surface(), quote)
    refusals = await store.fetchall("SELECT COUNT(*) FROM jobs")
    assert refusals[0][0] == 4, "every refused request left no job row"


async def test_each_workspace_counts_its_entries_in_its_own_period(store: Store) -> None:
    book = book_for(store)
    request, quote = a_request()
    await change(book, ("t", "weekly"), "budget_period", "week")
    await change(book, ("t", "paris"), "budget_timezone", "Europe/Paris")
    await change(book, ("t", "paris"), "budget_period", "day")
    weekly = Requester(platform="t", workspace="weekly", user="u")
    monthly = Requester(platform="t", workspace="monthly", user="u")
    paris = Requester(platform="t", workspace="paris", user="u")
    for who in (weekly, monthly, paris):
        await book.accept(who, request, Surface(), quote)
    found = await store.fetchall(
        "SELECT workspace, period_start FROM ledger WHERE kind = 'hold' ORDER BY workspace"
    )
    assert [(r[0], r[1]) for r in found] == [
        ("monthly", "2026-11-01"),
        ("paris", "2026-11-30"),
        ("weekly", "2026-11-30"),
    ]
    resets = {who.workspace: (await book.ledger.balance(who)).resets_at for who in (weekly, paris)}
    assert resets["weekly"] == dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert resets["paris"] == dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)  # local midnight
    assert (await book.ledger.balance(monthly)).resets_at == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    # Usage across workspaces: each row in its own workspace's period, with its hold.
    rows = await book.ledger.usage()
    assert {(r.workspace, r.period_start.isoformat(), r.reserved) for r in rows} == {
        ("monthly", "2026-11-01", quote),
        ("paris", "2026-11-30", quote),
        ("weekly", "2026-11-30", quote),
    }


# -- the dispatcher's caps ------------------------------------------------------------------------


async def test_the_queue_releases_by_each_workspaces_own_caps(store: Store) -> None:
    from bot.services.dispatcher import Dispatcher

    book = book_for(store, env(max_jobs_per_user=2, max_jobs_per_workspace=8))
    await change(book, ("t", "strict"), "max_jobs_per_user", "1")
    await change(book, ("t", "small"), "max_jobs_per_workspace", "3")
    request, quote = a_request()
    jobs: dict[str, list[str]] = {}
    for workspace, users in (("strict", 2), ("small", 3), ("plain", 1)):
        for n in range(users):
            who = Requester(platform="t", workspace=workspace, user=f"u{n}")
            for _ in range(3):
                job = await book.accept(who, request, Surface(), quote)
                jobs.setdefault(workspace, []).append(job.id)
    dispatcher = Dispatcher(
        book,
        None,  # type: ignore[arg-type]  # no notices: nothing is shown
        lambda _job: None,
        max_per_user=2,
        max_per_workspace=8,
    )
    started, _moved = await book.release_fitting(dispatcher._decide, None)
    per_workspace = {w: len([j for j in started if j in ids]) for w, ids in jobs.items()}
    # strict: 2 users × 1; small: 3 in all (its cap), though 3 users × 2 would fit the
    # per-user cap; plain: the environment's 2 per user.
    assert per_workspace == {"strict": 2, "small": 3, "plain": 2}
    again, _ = await book.release_fitting(dispatcher._decide, None)
    assert again == [], "nothing more fits until a slot frees"


async def test_a_stored_value_that_no_longer_reads_falls_back_to_the_environment(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A model the catalog has since dropped: the workspace gets the environment's default
    model (logged once, not at every admission) instead of refusing every request."""
    book = book_for(store)
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO workspace_settings VALUES (?, ?, ?, ?, ?, ?)",
            ("t", "W", "default_model", "a-model-gone-since", CLI, "2026-11-30T12:00:00Z"),
        )
    owner = book.ledger.workspace_settings
    for _ in range(3):
        found = await owner.read("t", "W")
    assert found.default_model == MODELS[0] and found.overridden == frozenset()
    warned = [r for r in caplog.records if "no longer reads" in r.getMessage()]
    assert len(warned) == 1
