"""What requests cost, worked out as the bot does, for tests that set budgets before a bot
runs: the packaged catalog, the shipped price list, the default DEFAULT_MODEL.

Tests size budgets from these instead of writing today's prices down, so a new snapshot or
a new default model changes no test. (tests/core/test_offer.py holds the hand-worked prices.)
"""

from __future__ import annotations

from decimal import Decimal

from bot.domain.catalog import Catalog, ModelSpec
from bot.domain.grammar import parse_request
from bot.domain.offer import quote_request
from bot.domain.pricing import PriceList
from bot.infra.config import Settings

CATALOG = Catalog.load()
PRICES = PriceList.load()
DEFAULT_MODEL: str = Settings.model_fields["default_model"].default
SPEC: ModelSpec = CATALOG.get(DEFAULT_MODEL)
#: The default model's durations: its default, its shortest and its longest.
DEFAULT_SECONDS = SPEC.default_duration
SHORTEST = min(SPEC.durations)
LONGEST = max(SPEC.durations)


def price_of(text: str, default_model: str = DEFAULT_MODEL) -> Decimal:
    """The credits the bot holds for `text` in the chat grammar."""
    return quote_request(CATALOG, PRICES, parse_request(text, CATALOG, default_model)).credits


#: A default request (`/sora a cat`) and one of the longest duration.
UNIT = price_of("a cat")
LONG = price_of(f"a cat --duration {LONGEST}")
