"""The model catalog: the packaged data validates, quotes are exact, operator files load,
and a broken file is refused with a ConfigError that names the file and the problem."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import ConfigError, InputError
from bot.domain.requests import RequestOptions, validate_request
from bot.infra.config import load_settings


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _minimal_model(**changes: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "name": "veo-3.1-fast",
        "label": "Veo 3.1 Fast",
        "durations": [4, 8],
        "default_duration": 8,
        "aspect_ratios": ["16:9", "9:16"],
        "default_aspect_ratio": "16:9",
        "ratio_aliases": {"landscape": "16:9", "portrait": "9:16"},
        "prompt_max_chars": 500,
        "prices": {"4": "10", "8": "19.999"},
    }
    model.update(changes)
    return model


def _write(tmp_path: Path, data: Any, name: str = "catalog.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# -- the packaged catalog ------------------------------------------------------------------


def test_packaged_catalog_loads_and_is_consistent(catalog: Catalog) -> None:
    assert catalog.version
    assert catalog.names() == [
        "sora-2",
        "sora-2-preview",
        "sora-2-pro",
        "sora-2-pro-remix",
        "seedance-2.0",
    ]
    assert "sora-2-pro-remix" not in catalog.names(selectable_only=True)
    for spec in catalog.models:
        assert spec.default_duration in spec.durations
        assert spec.default_aspect_ratio in spec.aspect_ratios
        assert sorted(spec.prices) == sorted(spec.durations)
        assert all(isinstance(p, Decimal) for p in spec.prices.values())
        # Every model understands the two generic orientations the chat surfaces offer.
        assert spec.normalize_ratio("landscape") in spec.aspect_ratios
        assert spec.normalize_ratio("portrait") in spec.aspect_ratios
        if spec.price_note is None:
            assert spec.name == "sora-2-preview"  # the only fully documented price table


def test_packaged_facts_match_the_evolink_docs(catalog: Catalog) -> None:
    sora = catalog.get("sora-2")
    assert (sora.durations, sora.default_duration) == ((10, 15), 10)
    assert (sora.aspect_ratios, sora.default_aspect_ratio) == (("16:9", "9:16"), "9:16")
    assert sora.prompt_max_chars == 1000
    assert (sora.watermark_option, sora.remove_watermark_default) == (True, True)
    assert (sora.image_input, sora.max_images) == (True, 1)
    preview = catalog.get("sora-2-preview")
    assert (preview.durations, preview.default_duration) == ((4, 8, 12), 4)
    assert preview.aspect_ratios == ("1280x720", "720x1280")
    assert preview.default_aspect_ratio == "1280x720"
    assert preview.resize_modes == ("pad", "crop")
    assert not preview.watermark_option
    remix = catalog.get("sora-2-pro-remix")
    assert remix.requires_base_task and not remix.selectable


@pytest.mark.parametrize(
    ("model", "duration", "watermark", "expected"),
    [
        ("sora-2", 10, None, "2.5"),
        ("sora-2", 15, None, "3.75"),
        ("sora-2", 10, False, "2.5"),  # watermark removed: the published price
        ("sora-2", 10, True, "2"),  # watermark kept: the cheaper "standard" price
        ("sora-2", 15, True, "3"),
        ("sora-2-preview", 4, None, "23.04"),
        ("sora-2-preview", 8, None, "46.08"),
        ("sora-2-preview", 12, None, "69.12"),
        ("sora-2-pro", 15, None, "11.25"),
        ("seedance-2.0", 5, None, "14.4"),
        ("seedance-2.0", 10, None, "28.8"),
    ],
)
def test_quote_is_exact_per_model_and_duration(
    catalog: Catalog, model: str, duration: int, watermark: bool | None, expected: str
) -> None:
    options = RequestOptions(prompt="a cat", model=model, duration=duration, watermark=watermark)
    request = validate_request(options, catalog, "sora-2")
    quote = catalog.quote(request)
    assert isinstance(quote, Decimal)
    assert quote == Decimal(expected)


def test_quote_of_a_remix_uses_the_remix_price(catalog: Catalog) -> None:
    options = RequestOptions(
        prompt="make it night",
        model="sora-2-pro-remix",
        base_video_task_id="task-unified-1757169743-7cvnl5zw",
    )
    request = validate_request(options, catalog, "sora-2")
    assert catalog.quote(request) == Decimal("7.5")


@pytest.mark.parametrize("name", ["sora-2", "SORA-2", " Sora-2 ", "ｓｏｒａ－２"])
def test_get_is_case_insensitive_and_returns_the_catalog_spelling(
    catalog: Catalog, name: str
) -> None:
    assert catalog.get(name).name == "sora-2"


def test_unknown_model_lists_the_valid_names(catalog: Catalog) -> None:
    with pytest.raises(InputError) as err:
        catalog.get("sora-3")
    assert err.value.field == "model"
    assert "sora-3" in str(err.value)
    assert set(err.value.valid) == {"sora-2", "sora-2-preview", "sora-2-pro", "seedance-2.0"}
    for name in err.value.valid:
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("sora-2", "sora-2-pro-remix"),
        ("SORA-2-PRO", "sora-2-pro-remix"),
        ("sora-2-preview", None),
        ("seedance-2.0", None),
        ("sora-2-pro-remix", None),
        ("no-such-model", None),
    ],
)
def test_remix_model_for(catalog: Catalog, model: str, expected: str | None) -> None:
    assert catalog.remix_model_for(model) == expected


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        ("sora-2", "16:9", "16:9"),
        ("sora-2", "LANDSCAPE", "16:9"),
        ("sora-2", "portrait", "9:16"),
        ("sora-2", "1280x720", "16:9"),
        ("sora-2", "720×1280", "9:16"),
        ("sora-2", "１６：９", "16:9"),
        ("sora-2", '"9:16"', "9:16"),
        ("sora-2-preview", "16:9", "1280x720"),
        ("sora-2-preview", "9:16", "720x1280"),
        ("sora-2-preview", "1280X720", "1280x720"),
        ("seedance-2.0", "square", "1:1"),
        ("seedance-2.0", "21/9", "21:9"),
        ("sora-2", "1:1", None),
        ("sora-2", "", None),
        ("sora-2-preview", "4:3", None),
    ],
)
def test_normalize_ratio(catalog: Catalog, model: str, text: str, expected: str | None) -> None:
    assert catalog.get(model).normalize_ratio(text) == expected


def test_check_default_model(catalog: Catalog) -> None:
    assert catalog.check_default_model("Sora-2").name == "sora-2"
    for bad in ("sora-2-pro-remix", "sora-9"):
        with pytest.raises(ConfigError, match="DEFAULT_MODEL"):
            catalog.check_default_model(bad)


# -- operator files (CATALOG_PATH) ----------------------------------------------------------


def test_custom_catalog_file_via_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, {"version": "ops-7", "models": [_minimal_model()]})
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    monkeypatch.setenv("CATALOG_PATH", str(path))
    settings = load_settings()
    assert settings.catalog_path == path
    custom = Catalog.load(settings.catalog_path)
    assert custom.version == "ops-7"
    assert custom.names() == ["veo-3.1-fast"]
    assert str(path) in custom.source
    options = RequestOptions(prompt="surf at dawn", duration="8s", aspect_ratio="portrait")
    request = validate_request(options, custom, "veo-3.1-fast")
    assert (request.duration, request.aspect_ratio) == (8, "9:16")
    assert request.remove_watermark is None  # the model has no watermark option
    assert custom.quote(request) == Decimal("19.999")


def test_prices_may_be_json_integers(tmp_path: Path) -> None:
    path = _write(tmp_path, {"version": "1", "models": [_minimal_model(prices={"4": 3, "8": 6})]})
    assert Catalog.load(path).get("veo-3.1-fast").prices == {4: Decimal(3), 8: Decimal(6)}


_BROKEN: list[tuple[str, Any, str]] = [
    ("not json", '{ "version": "1", ', "not valid JSON"),
    ("empty models", {"version": "1", "models": []}, "models"),
    ("no version", {"models": [_minimal_model()]}, "version"),
    (
        "float price",
        {"version": "1", "models": [_minimal_model(prices={"4": 1.1, "8": 2})]},
        "strings",
    ),
    (
        "missing price",
        {"version": "1", "models": [_minimal_model(prices={"4": "1"})]},
        "no price for duration(s) [8]",
    ),
    (
        "extra price",
        {"version": "1", "models": [_minimal_model(prices={"4": "1", "8": "2", "6": "1.5"})]},
        "[6]",
    ),
    (
        "negative price",
        {"version": "1", "models": [_minimal_model(prices={"4": "-1", "8": "2"})]},
        "zero or positive",
    ),
    (
        "sub-milli price",
        {"version": "1", "models": [_minimal_model(prices={"4": "1.0001", "8": "2"})]},
        "three decimals",
    ),
    (
        "default duration",
        {"version": "1", "models": [_minimal_model(default_duration=6)]},
        "default_duration 6",
    ),
    (
        "default ratio",
        {"version": "1", "models": [_minimal_model(default_aspect_ratio="1:1")]},
        "default_aspect_ratio",
    ),
    (
        "bad alias",
        {"version": "1", "models": [_minimal_model(ratio_aliases={"square": "1:1"})]},
        "'square'",
    ),
    ("typo key", {"version": "1", "models": [_minimal_model(duratoins=[4])]}, "duratoins"),
    (
        "duplicate",
        {"version": "1", "models": [_minimal_model(), _minimal_model(name="VEO-3.1-FAST")]},
        "appears twice",
    ),
    (
        "remix unknown",
        {
            "version": "1",
            "models": [
                _minimal_model(),
                _minimal_model(name="veo-remix", remix_of=["veo-9"], requires_base_task=True),
            ],
        },
        "veo-9",
    ),
    (
        "remix flag",
        {
            "version": "1",
            "models": [
                _minimal_model(),
                _minimal_model(name="veo-remix", remix_of=["veo-3.1-fast"]),
            ],
        },
        "requires_base_task",
    ),
    (
        "watermark default",
        {"version": "1", "models": [_minimal_model(watermark_option=True)]},
        "remove_watermark_default",
    ),
    ("image count", {"version": "1", "models": [_minimal_model(image_input=True)]}, "max_images"),
    (
        "only remix",
        {"version": "1", "models": [_minimal_model(requires_base_task=True)]},
        "ordered directly",
    ),
]


@pytest.mark.parametrize(("case", "data", "problem"), _BROKEN, ids=[c[0] for c in _BROKEN])
def test_broken_catalog_file_names_the_file_and_the_problem(
    tmp_path: Path, case: str, data: Any, problem: str
) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        Catalog.load(path)
    message = str(err.value)
    assert str(path) in message
    assert problem in message


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_unreadable_catalog_file_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "catalog.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError) as err:
        Catalog.load(path)
    assert str(path) in str(err.value)
