"""Prices from EvoLink's rules: every orderable model and duration is quoted exactly as the
rules say, hand-worked prices match, and a model the list does not offer is refused with the
models that are."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.models import from_uc, to_uc
from bot.domain.offer import (
    Choices,
    held_credits,
    orderable,
    quote_choices,
    quote_request,
    rule_variables,
)
from bot.domain.pricing import PriceList
from bot.domain.requests import RequestOptions, validate_request

CATALOG = Catalog.load()
PRICES = PriceList.load()
IMAGE = "https://example.com/first-frame.png"


def _request(model: str, **options: Any) -> Any:
    spec = CATALOG.get(model)
    if spec.image_required:
        options.setdefault("image_url", IMAGE)
    return validate_request(RequestOptions(prompt="a cat", model=model, **options), CATALOG, model)


def _snapshot() -> dict[str, Any]:
    raw = json.loads(resources.files("bot").joinpath("data/pricing-rules.json").read_text())
    assert isinstance(raw, dict)
    return raw


@pytest.mark.parametrize("model", CATALOG.names(selectable_only=True))
def test_every_orderable_model_and_duration_is_priced_by_the_rules(model: str) -> None:
    spec = CATALOG.get(model)
    pricing = PRICES.model(model)
    qualities = spec.qualities or (None,)
    audios = (True, False) if spec.audio_option else (None,)
    for duration in spec.durations:
        for quality in qualities:
            for audio in audios:
                request = _request(model, duration=duration, quality=quality, audio=audio)
                price = quote_request(CATALOG, PRICES, request)
                rules = pricing.quote(rule_variables(Choices.of(request), pricing))
                assert price.exact == rules.credits
                assert price.credits == held_credits(rules.credits) >= rules.credits
                assert price.pricing_version == PRICES.meta.pricing_version


@pytest.mark.parametrize(
    ("model", "options", "credits"),
    [
        # The seed page's published sora-2-preview prices: 5.76 credits a second, 23.04 least.
        ("sora-2-preview", {"duration": 4}, "23.04"),
        ("sora-2-preview", {"duration": 8}, "46.08"),
        ("sora-2-preview", {"duration": 12}, "69.12"),
        # Seedance 2.0: 13.5 credits a second × the quality factor (720p 1, 1080p 2.5).
        ("seedance-2.0-text-to-video", {"duration": 5}, "67.5"),
        ("seedance-2.0-text-to-video", {"duration": 10, "quality": "1080p"}, "337.5"),
        ("seedance-2.0-text-to-video", {"duration": 4, "quality": "480p"}, "25.11"),
        ("seedance-2.0-image-to-video", {"duration": 15, "quality": "4k"}, "1032.75"),
        ("seedance-2.0-reference-to-video", {"duration": 5}, "67.5"),
        # Veo 3.1 fast: 6.336 a second, ×1.5 with audio (×3.51 at 4k), minimum 25.344; the 4k
        # price is 8 × 3.51 × 63,360 uc = 1,779,148.8 uc, rounded half up to whole uc.
        ("veo-3.1-fast-generate-preview", {"duration": 4}, "38.016"),
        ("veo-3.1-fast-generate-preview", {"duration": 4, "audio": False}, "25.344"),
        ("veo-3.1-fast-generate-preview", {"duration": 8, "quality": "4k"}, "177.9149"),
        # Kling v3: 5.4 a second; sound on 720p ×1.5; 1080p without sound ×1.334.
        ("kling-v3-text-to-video", {"duration": 5}, "27"),
        ("kling-v3-text-to-video", {"duration": 5, "audio": True}, "40.5"),
        ("kling-v3-text-to-video", {"duration": 3, "quality": "1080p"}, "21.6108"),
    ],
)
def test_hand_worked_prices(model: str, options: dict[str, Any], credits: str) -> None:
    price = quote_request(CATALOG, PRICES, _request(model, **options))
    assert price.exact == Decimal(credits)
    assert price.credits == held_credits(Decimal(credits))


def test_a_price_in_whole_uc_is_held_exactly_and_a_finer_one_rounded_up() -> None:
    assert held_credits(Decimal("21.6108")) == Decimal("21.6108")  # the ledger counts uc too
    assert held_credits(Decimal("177.9149")) == Decimal("177.9149")
    assert held_credits(Decimal("23.04")) == Decimal("23.04")
    assert held_credits(Decimal("300")) == Decimal("300")
    assert held_credits(Decimal("0.00001")) == Decimal("0.0001")  # finer than a uc: up, not down
    assert to_uc(Decimal("21.6108")) == 216_108 and from_uc(216_108) == Decimal("21.6108")


def test_every_default_request_is_held_at_the_rules_own_figure() -> None:
    """No orderable model's hold differs from its price by a rounding (the 4-decimal prices)."""
    for name in orderable(CATALOG, PRICES):
        for quality in CATALOG.get(name).qualities or (None,):
            options = {"quality": quality} if quality else {}
            price = quote_request(CATALOG, PRICES, _request(name, **options))
            assert price.credits == price.exact, (name, quality)


def test_the_options_that_change_the_price_are_named() -> None:
    def options(model: str) -> tuple[str, ...]:
        return quote_request(CATALOG, PRICES, _request(model)).price_options

    assert options("sora-2-preview") == ("duration",)
    assert options("seedance-2.0-text-to-video") == ("duration", "quality")
    assert options("veo-3.1-fast-generate-preview") == ("duration", "quality", "audio")
    assert options("kling-v3-text-to-video") == ("duration", "quality", "audio")


def test_default_choices_price_the_default_request() -> None:
    for spec in CATALOG.models:
        by_defaults = quote_choices(CATALOG, PRICES, spec, Choices.defaults(spec))
        assert by_defaults == quote_request(CATALOG, PRICES, _request(spec.name))


@pytest.mark.parametrize("how", ["absent", "retired", "unavailable"])
def test_a_model_the_list_does_not_offer_is_refused_naming_the_others(how: str) -> None:
    raw = copy.deepcopy(_snapshot())
    if how == "absent":
        raw["models"] = [m for m in raw["models"] if m["model_id"] != "sora-2-preview"]
    else:
        for m in raw["models"]:
            if m["model_id"] == "sora-2-preview":
                m["lifecycle" if how == "retired" else "pricing_status"] = how
    changed = PriceList.from_json(raw)
    request = _request("sora-2-preview")
    with pytest.raises(InputError) as err:
        quote_request(CATALOG, changed, request)
    assert err.value.field == "model"
    others = orderable(CATALOG, changed)
    assert "sora-2-preview" not in others and others
    assert set(err.value.valid) == set(others)
    for name in others:
        assert name in str(err.value)
    assert "sora-2-preview" in str(err.value)
