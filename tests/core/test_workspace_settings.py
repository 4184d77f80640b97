"""Per-workspace settings on each engine: two workspaces with different allowances, team
budgets, periods, default models and concurrency caps each get their own; a change is one
audit row; bad values change nothing; "default" gives the environment's value back; removing
a workspace cancels what costs nothing and leaves a submitted job running."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import BudgetError, InputError, PermissionDenied
from bot.domain.models import Requester, Surface, VideoRequest, from_uc
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
    from bot.infra.config import load_settings
    from bot.domain.errors import ConfigError

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
