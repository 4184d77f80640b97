"""The price calculator (bot/pricing): the shipped snapshot loads, the published sora-2-preview
prices come out exactly, rounding and minimums work as the rules say, and everything the
calculator cannot price — an unknown operator, an unknown or missing variable, a value the
rules do not price, a model not offered — is a PricingError that names it, never a zero.
Per-model prices worked out by hand are in tests/core/test_pricing_models.py, the snapshot
and its script in tests/core/test_price_snapshot.py."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from bot.domain.errors import BotError
from bot.domain.pricing import PriceList, PricingError
from bot.domain.pricing.expressions import key_text


@pytest.fixture(scope="module")
def prices() -> PriceList:
    return PriceList.load()


def _model(quantity: Any, **changes: Any) -> dict[str, Any]:
    """A one-component model `m` at 1 credit (10,000 uc) per unit, no minimum."""
    component: dict[str, Any] = {
        "id": "c",
        "role": "video_output",
        "unit": "output_second",
        "sku_id": "1",
        "billing_rule": "per_second",
        "billing_unit_size": 1,
        "pricing_status": "available",
        "rate": {"uc": "10000", "credits": "1"},
        "minimum_charge": {"uc": "0", "credits": "0"},
        "quantity_rule": quantity,
        "rounding": {"point": "per_component_subtotal", "mode": "half_up"},
        "tiers": [],
    }
    component.update(changes.pop("component", {}))
    model: dict[str, Any] = {
        "model_id": "m",
        "modality": "video",
        "lifecycle": "active",
        "pricing_status": "available",
        "policy_source": "published",
        "settlement_basis": "request_only",
        "parameters": [{"name": "x", "type": "decimal", "minimum": "0", "default": "1"}],
        "components": [component],
    }
    model.update(changes)
    return model


def _list(*models: dict[str, Any]) -> PriceList:
    return PriceList.from_json({"meta": {"pricing_version": "prc_test"}, "models": list(models)})


X = {"op": "variable", "name": "x"}


def _c(value: str) -> dict[str, str]:
    return {"op": "constant", "value": value}


# -- the published sora-2-preview prices -------------------------------------------------


def test_sora_2_preview_matches_the_published_prices(prices: PriceList) -> None:
    sora = prices.model("sora-2-preview")
    # 5.76 credits/s (57,600 uc) × 4 s = 230,400 uc = 23.04 (also exactly the minimum)
    # × 8 s = 460,800 uc = 46.08; × 12 s = 691,200 uc = 69.12
    assert sora.quote({"duration": 4}).credits == Decimal("23.04")
    assert sora.quote({"duration": "8"}).credits == Decimal("46.08")
    assert sora.quote({"duration": 12}).credits == Decimal("69.12")
    quote = sora.quote({"duration": 8})
    assert quote.uc == 460_800
    assert str(quote.credits) == "46.08"
    assert quote.pricing_version == "prc_8f4a873281b23540f02304d1"
    assert quote.settlement_basis == "request_only"
    assert quote.breakdown == {"video_output": Decimal("46.08")}
    assert quote.defaulted == ()
    assert sora.variables["duration"].choices == ("4", "8", "12")


def test_sora_refuses_a_duration_it_has_no_price_for(prices: PriceList) -> None:
    with pytest.raises(PricingError, match="duration") as err:
        prices.model("sora-2-preview").quote({"duration": 10})
    assert err.value.name == "duration"
    assert "4, 8, 12" in str(err.value)
    assert isinstance(err.value, BotError)


# -- errors name what is wrong ------------------------------------------------------------


def test_an_unknown_operator_is_refused_by_name() -> None:
    with pytest.raises(PricingError, match="'pow'") as err:
        _list(_model({"op": "pow", "args": [X, _c("2")]}))
    assert err.value.name == "pow"


def test_a_rule_reading_an_undeclared_variable_is_refused_by_name() -> None:
    with pytest.raises(PricingError, match="resolution") as err:
        _list(_model({"op": "variable", "name": "resolution"}))
    assert err.value.name == "resolution"


def test_an_unknown_variable_in_a_request_is_refused_by_name(prices: PriceList) -> None:
    with pytest.raises(PricingError, match="'resolution'") as err:
        prices.model("sora-2-preview").quote({"duration": 8, "resolution": "720p"})
    assert err.value.name == "resolution"


@pytest.mark.parametrize(
    ("model_id", "given", "missing"),
    [
        ("omnihuman-1.5", {}, "duration_seconds"),  # no default in the list
        ("tencent-video-upscale", {"quality": "4k"}, "output_seconds"),  # no default
        ("gemini-omni-flash-text-to-video", {}, "input_tokens"),  # usage: default 0 not taken
    ],
)
def test_a_missing_required_variable_is_named(
    prices: PriceList, model_id: str, given: dict[str, object], missing: str
) -> None:
    with pytest.raises(PricingError, match=missing) as err:
        prices.model(model_id).quote(given)
    assert err.value.name == missing
    assert prices.model(model_id).variables[missing].required


def test_without_defaults_every_variable_read_must_be_given(prices: PriceList) -> None:
    with pytest.raises(PricingError, match="'duration'"):
        prices.model("sora-2-preview").quote({}, defaults=False)
    quote = prices.model("sora-2-preview").quote({})
    assert quote.defaulted == ("duration",)  # the list's default, 8 s
    assert quote.credits == Decimal("46.08")


@pytest.mark.parametrize(
    ("model_id", "given", "name"),
    [
        ("wan2.6-text-to-video", {"duration_seconds": 5.0}, "duration_seconds"),  # float
        ("happyhorse-1.0-text-to-video", {"duration_seconds": 2}, "duration_seconds"),  # < 3
        ("seedance-2.0-text-to-video", {"duration_seconds": "5.5"}, "duration_seconds"),  # int
        ("seedance-2.0-text-to-video", {"quality": "8k"}, "quality"),  # not in the enum
        ("seedance-1.5-pro", {"generate_audio": "yes"}, "generate_audio"),  # not a boolean
        ("veo-3.1-generate-preview", {"duration_seconds": 5}, "duration_seconds"),  # gate 4/6/8
    ],
)
def test_a_value_the_rules_do_not_price_is_refused(
    prices: PriceList, model_id: str, given: dict[str, object], name: str
) -> None:
    with pytest.raises(PricingError, match=name) as err:
        prices.model(model_id).quote(given)
    assert err.value.name == name


def test_unknown_and_unoffered_models_are_refused(prices: PriceList) -> None:
    with pytest.raises(PricingError, match="sora-2-pro") as err:
        prices.model("sora-2-pro")
    assert err.value.name == "sora-2-pro"
    upload = prices.model("seedance-asset-upload")  # pricing_status "unavailable"
    assert not upload.offered
    with pytest.raises(PricingError, match="unavailable"):
        upload.quote()


def test_a_request_no_component_prices_is_not_quoted_at_zero(prices: PriceList) -> None:
    gemini = prices.model("gemini-omni-flash-text-to-video")
    zero = {"input_tokens": 0, "video_output_tokens": 0, "other_output_tokens": 0}
    with pytest.raises(PricingError, match="no priced component"):
        gemini.quote(zero)


def test_evaluation_errors_name_the_operator_or_variable() -> None:
    divide = _list(_model({"op": "divide", "args": [_c("1"), X]})).model("m")
    with pytest.raises(PricingError, match="divides by zero") as err:
        divide.quote({"x": 0})
    assert err.value.name == "divide"
    table = {"op": "lookup", "key": X, "values": {"1": "1", "2": "3"}}
    lookup = _list(_model(table)).model("m")
    assert lookup.quote({"x": 2}).uc == 30_000  # 3 units × 10,000 uc
    with pytest.raises(PricingError, match="must be one of 1, 2") as err:
        lookup.quote({"x": 3})  # the table's keys are the values x may take
    assert err.value.name == "x"
    computed = dict(table, key={"op": "add", "args": [X, _c("0.5")]})
    with pytest.raises(PricingError, match=r"lookup key = '2\.5'"):
        _list(_model(computed)).model("m").quote({"x": 2})
    negative = _list(_model({"op": "subtract", "args": [X, _c("2")]})).model("m")
    with pytest.raises(PricingError, match="not a number >= 0"):
        negative.quote({"x": 1})


def test_broken_rules_are_refused_when_loading() -> None:
    bad_money = _model(X, component={"rate": {"uc": "10000", "credits": "2"}})
    with pytest.raises(PricingError, match="10000 uc"):
        _list(bad_money)
    bad_unit = _model(X, component={"billing_unit_size": 1000})  # quantity not x / 1000
    with pytest.raises(PricingError, match="billing_unit_size"):
        _list(bad_unit)
    bad_rounding = _model(X, component={"rounding": {"point": "per_thing", "mode": "half_up"}})
    with pytest.raises(PricingError, match="per_thing"):
        _list(bad_rounding)
    bad_mode = _model(X, component={"rounding": {"point": "per_tier", "mode": "banker"}})
    with pytest.raises(PricingError, match="banker"):
        _list(bad_mode)
    with pytest.raises(PricingError, match="'if' takes 3-3"):
        _list(_model({"op": "if", "args": [X, X]}))


# -- rounding, minimums, tiers ------------------------------------------------------------


def test_rounding_modes_on_the_shipped_rules(prices: PriceList) -> None:
    # half_up, an exact half: seedance-2.5-video-extend duration 5, input 30 s:
    # (5 + max(30, 5)) = 35 s × 0.609 = 21.315 × 200,900 uc = 4,282,183.5 → 4,282,184
    extend = prices.model("seedance-2.5-video-extend").quote({"duration": 5, "input_seconds": 30})
    assert extend.uc == 4_282_184
    assert extend.lines[0].subtotal_uc == 4_282_184
    # half_up, down: wan3.0-prime 5 s 720p: 5 × 2.06 = 10.3 × 39,304 = 404,831.2 → 404,831
    assert prices.model("wan3.0-prime-text-to-video").quote({}).uc == 404_831
    # ceil: gemini 1,500 input tokens = 1.5 × 867 uc = 1,300.5 → 1,301; 1 token → 0.867 → 1
    gemini = prices.model("gemini-omni-flash-text-to-video")
    usage = {"input_tokens": 1500, "video_output_tokens": 0, "other_output_tokens": 1}
    quote = gemini.quote(usage)
    assert quote.breakdown == {
        "input": Decimal("0.1301"),
        "video_output": Decimal(0),  # skipped: condition video_output_tokens > 0 is false
        "other_output": Decimal("0.0006"),  # 1 token: 0.001 × 5,202 uc = 5.202 → ceil 6 uc
    }
    assert quote.uc == 1301 + 6
    assert [line.applied for line in quote.lines] == [True, False, True]


def test_floor_per_quantity_and_per_tier_rounding() -> None:
    # floor: 2.75 units × 10,001 uc = 27,502.75 → 27,502
    floor = _model(
        X,
        component={
            "rate": {"uc": "10001"},
            "rounding": {"point": "per_component_subtotal", "mode": "floor"},
        },
    )
    assert _list(floor).model("m").quote({"x": "2.75"}).uc == 27_502
    # per_quantity, ceil: round(2.2 × m 1) = 3 units × 10,000 = 30,000
    per_quantity = _model(X, component={"rounding": {"point": "per_quantity", "mode": "ceil"}})
    assert _list(per_quantity).model("m").quote({"x": "2.2"}).uc == 30_000
    # per_tier: q × rate (whole uc): 2.5 × 10,000 = 25,000; 2.00005 × 10,000 is no whole uc
    per_tier = _model(X, component={"rounding": {"point": "per_tier", "mode": "half_up"}})
    assert _list(per_tier).model("m").quote({"x": "2.5"}).uc == 25_000
    with pytest.raises(PricingError, match="not a whole number"):
        _list(per_tier).model("m").quote({"x": "2.00005"})


def test_the_minimum_applies_per_component_and_not_to_skipped_ones() -> None:
    base = _model(X, component={"minimum_charge": {"uc": "50000", "credits": "5"}})
    extra = dict(base["components"][0], id="extra", condition={"op": "gt", "args": [X, _c("3")]})
    base["components"].append(extra)
    model = _list(base).model("m")
    # x = 2: c → 2 credits, raised to its minimum 5; extra skipped (x > 3 false) → 0, no minimum
    quote = model.quote({"x": 2})
    assert quote.credits == Decimal(5)
    assert [line.minimum_applied for line in quote.lines] == [True, False]
    # x = 4: each component 4 credits, each raised to its own minimum 5 → 10 (not max(8, 5))
    assert model.quote({"x": 4}).credits == Decimal(10)


def test_the_minimum_charge_on_the_shipped_rules(prices: PriceList) -> None:
    # seedance-1.5-pro 4 s 480p no audio: 4 × 0.46 = 1.84 × 17,784 uc = 32,722.56 → 32,723 uc,
    # below the minimum 34,445 uc → 3.4445 credits
    quote = prices.model("seedance-1.5-pro").quote(
        {"duration_seconds": 4, "quality": "480p", "generate_audio": False}
    )
    assert quote.credits == Decimal("3.4445")
    assert quote.lines[0].subtotal_uc == 32_723 and quote.lines[0].minimum_applied


def test_tiers_pick_the_rate_and_must_not_overlap(prices: PriceList) -> None:
    upscale = prices.model("tencent-video-upscale")
    # 3 s 2k: max(ceil(3 − 0.000001), 1) = 3 × 1.75 = 5.25 units; fps ≤ 30.05 → 5,440 uc
    at = {"output_seconds": 3, "quality": "2k"}
    assert upscale.quote({**at, "output_fps": "30.05"}).uc == 28_560  # 5.25 × 5,440
    assert upscale.quote({**at, "output_fps": "30.06"}).uc == 57_120  # × 10,880 (tier ×2)
    assert upscale.quote({**at, "output_fps": 61}).lines[0].multiplier == 4  # × 21,760
    both = _model(
        X,
        component={
            "tiers": [
                {
                    "when": {"op": "gt", "args": [X, _c("1")]},
                    "multiplier": "1",
                    "sku_id": "1",
                    "rate": {"uc": "1"},
                    "minimum_charge": {"uc": "0"},
                    "pricing_status": "available",
                },
                {
                    "when": {"op": "gt", "args": [X, _c("2")]},
                    "multiplier": "2",
                    "sku_id": "1",
                    "rate": {"uc": "2"},
                    "minimum_charge": {"uc": "0"},
                    "pricing_status": "available",
                },
            ]
        },
    )
    assert _list(both).model("m").quote({"x": 2}).uc == 2  # only the first: 2 × 1 uc
    with pytest.raises(PricingError, match="all match"):
        _list(both).model("m").quote({"x": 3})


# -- the language's comparisons and texts -------------------------------------------------


def test_equality_booleans_numbers_and_texts() -> None:
    flag = {"name": "f", "type": "boolean", "default": True}
    mode = {"name": "s", "type": "enum", "values": ["on", "off", "8"], "default": "on"}
    rule = {
        "op": "if",
        "args": [
            {
                "op": "and",
                "args": [
                    {"op": "eq", "args": [{"op": "variable", "name": "f"}, _c("true")]},
                    {"op": "neq", "args": [{"op": "variable", "name": "s"}, _c("off")]},
                ],
            },
            {
                "op": "if",
                "args": [
                    {"op": "eq", "args": [{"op": "variable", "name": "s"}, _c("8.0")]},
                    _c("3"),
                    _c("2"),
                ],
            },
            {
                "op": "if",
                "args": [
                    {"op": "not", "args": [{"op": "lt", "args": [_c("1"), _c("2")]}]},
                    _c("5"),
                    _c("1"),
                ],
            },
        ],
    }
    model = _list(_model(rule, parameters=[flag, mode])).model("m")
    assert model.quote({"f": True, "s": "on"}).uc == 20_000  # on: 2 units
    assert model.quote({"f": True, "s": "8"}).uc == 30_000  # "8" = 8.0 numerically: 3
    assert model.quote({"f": False}).uc == 10_000  # not (1 < 2) is false: 1
    assert model.quote({"s": "off"}).uc == 10_000


def test_lookup_keys_are_written_as_the_list_writes_them() -> None:
    assert key_text(Fraction(8)) == "8"
    assert key_text(Fraction(1, 2)) == "0.5"
    assert key_text(Fraction(-5, 4)) == "-1.25"
    assert key_text(Fraction(1, 3)) == "1/3"
    assert key_text(True) == "true"


def test_exact_inputs_in_exact_credits_out(prices: PriceList) -> None:
    # videoretalk 12.345 s × 8,000 uc = 98,760 uc = 9.876 credits (Decimal or text input)
    retalk = prices.model("videoretalk")
    assert retalk.quote({"duration_seconds": Decimal("12.345")}).credits == Decimal("9.876")
    assert retalk.quote({"duration_seconds": "12.345"}).uc == 98_760
    assert isinstance(retalk.quote().credits, Decimal)


def test_offer_facts_and_accepted_values(prices: PriceList) -> None:
    veo = prices.model("veo-3.1-fast-generate-preview")
    assert veo.offered and veo.lifecycle == "active" and veo.pricing_status == "available"
    assert veo.settlement_basis == "request_then_actual"
    assert veo.variables["duration_seconds"].choices == ("4", "6", "8")
    assert veo.variables["quality"].choices == ("720p", "1080p", "4k")
    assert veo.variables["generate_audio"].default is True
    kling = prices.model("kling-v3-text-to-video")
    assert kling.variables["sound"].choices == ("off", "on")
    assert kling.variables["duration_seconds"].minimum == Decimal(3)
    assert kling.variables["duration_seconds"].maximum == Decimal(15)
    assert prices.model("omnihuman-1.5").variables["duration_seconds"].default is None
    assert prices.model("gemini-omni-flash-video-edit").variables["input_tokens"].usage
