"""The model catalog: the packaged data describes EvoLink's current models (each offered by
the price list), operator files load, and a broken file is refused with a ConfigError that
names the file and the problem. Prices: tests/core/test_offer.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import ConfigError, InputError
from bot.domain.pricing import PriceList
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
    }
    model.update(changes)
    return model


def _write(tmp_path: Path, data: Any, name: str = "catalog.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# -- the packaged catalog ------------------------------------------------------------------

PRICES = PriceList.load()


def test_packaged_catalog_has_evolinks_current_models_and_only_offered_ones(
    catalog: Catalog,
) -> None:
    assert catalog.version
    names = catalog.names()
    assert "sora-2-preview" in names
    for variant in ("text", "image", "reference"):
        assert f"seedance-2.0-{variant}-to-video" in names
    assert any(n.startswith("veo-3.1") for n in names)
    assert any(n.startswith("kling-") for n in names)
    # Retired by OpenAI / never priced by EvoLink: gone, and nothing to remix with.
    for gone in ("sora-2", "sora-2-pro", "sora-2-pro-remix", "seedance-2.0"):
        assert catalog.find(gone) is None
    assert all(spec.selectable for spec in catalog.models)
    for spec in catalog.models:
        assert PRICES.model(spec.name).offered, spec.name
        assert spec.default_duration in spec.durations
        assert spec.default_aspect_ratio in spec.aspect_ratios
        # Every model understands the two generic orientations the chat surfaces offer.
        assert spec.normalize_ratio("landscape") in spec.aspect_ratios
        assert spec.normalize_ratio("portrait") in spec.aspect_ratios


def test_packaged_facts_match_the_evolink_docs(catalog: Catalog) -> None:
    preview = catalog.get("sora-2-preview")
    assert (preview.durations, preview.default_duration) == ((4, 8, 12), 4)
    assert preview.aspect_ratios == ("1280x720", "720x1280")
    assert preview.default_aspect_ratio == "1280x720"
    assert preview.normalize_ratio("16:9") == "1280x720"
    assert (preview.image_input, preview.max_images) == (True, 1)
    assert preview.resize_modes == ("pad", "crop")
    assert not preview.watermark_option and not preview.qualities and not preview.audio_option
    for variant in ("text", "image", "reference"):
        spec = catalog.get(f"seedance-2.0-{variant}-to-video")
        assert spec.durations == tuple(range(4, 16))
        assert {"16:9", "9:16", "1:1", "21:9"} <= set(spec.aspect_ratios)
        assert spec.qualities == ("480p", "720p", "1080p", "4k")
        assert spec.image_required == (variant != "text")
    assert catalog.get("seedance-2.0-reference-to-video").max_images == 9
    veo = catalog.get("veo-3.1-fast-generate-preview")
    assert veo.durations == (4, 6, 8) and veo.audio_default is True
    kling = catalog.get("kling-v3-text-to-video")
    assert kling.durations == tuple(range(3, 16)) and kling.audio_default is False


def test_every_catalog_option_is_one_the_rules_price(catalog: Catalog) -> None:
    """Durations and qualities the catalog offers are values the price list prices."""
    for spec in catalog.models:
        variables = PRICES.model(spec.name).variables
        if spec.qualities:
            assert set(spec.qualities) <= set(variables["quality"].choices or ()), spec.name
        if "duration" in variables:
            assert {str(d) for d in spec.durations} <= set(variables["duration"].choices or ())


@pytest.mark.parametrize(
    "name", ["sora-2-preview", "SORA-2-PREVIEW", " Sora-2-Preview ", "ｓｏｒａ－２－ｐｒｅｖｉｅｗ"]
)
def test_get_is_case_insensitive_and_returns_the_catalog_spelling(
    catalog: Catalog, name: str
) -> None:
    assert catalog.get(name).name == "sora-2-preview"


def test_unknown_model_lists_the_valid_names(catalog: Catalog) -> None:
    with pytest.raises(InputError) as err:
        catalog.get("sora-3")
    assert err.value.field == "model"
    assert "sora-3" in str(err.value)
    assert set(err.value.valid) == set(catalog.names(selectable_only=True))
    for name in err.value.valid:
        assert name in str(err.value)


def test_no_packaged_model_can_be_remixed(catalog: Catalog) -> None:
    for name in catalog.names():
        assert catalog.remix_model_for(name) is None


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        ("sora-2-preview", "16:9", "1280x720"),
        ("sora-2-preview", "9:16", "720x1280"),
        ("sora-2-preview", "1280X720", "1280x720"),
        ("sora-2-preview", "LANDSCAPE", "1280x720"),
        ("sora-2-preview", "720×1280", "720x1280"),
        ("sora-2-preview", "１６：９", "1280x720"),
        ("sora-2-preview", '"9:16"', "720x1280"),
        ("seedance-2.0-text-to-video", "square", "1:1"),
        ("seedance-2.0-text-to-video", "21/9", "21:9"),
        ("seedance-2.0-text-to-video", "1280x720", "16:9"),
        ("kling-v3-text-to-video", "1:1", "1:1"),
        ("veo-3.1-fast-generate-preview", "1:1", None),
        ("sora-2-preview", "", None),
        ("sora-2-preview", "4:3", None),
    ],
)
def test_normalize_ratio(catalog: Catalog, model: str, text: str, expected: str | None) -> None:
    assert catalog.get(model).normalize_ratio(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("1080p", "1080p"), ("1080P", "1080p"), ("1080", "1080p"), ("4K", "4k")]
)
def test_normalize_quality(catalog: Catalog, text: str, expected: str) -> None:
    assert catalog.get("seedance-2.0-text-to-video").normalize_quality(text) == expected
    assert catalog.get("sora-2-preview").normalize_quality(text) is None


def test_check_default_model(catalog: Catalog) -> None:
    assert catalog.check_default_model("Sora-2-Preview").name == "sora-2-preview"
    for bad in ("sora-2", "sora-9"):
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


def test_a_catalog_file_with_prices_is_refused(tmp_path: Path) -> None:
    """Prices come from EvoLink's rules; a price table is a mistake worth naming."""
    data = {"version": "1", "models": [_minimal_model(prices={"4": "1", "8": "2"})]}
    with pytest.raises(ConfigError, match="prices"):
        Catalog.load(_write(tmp_path, data))


_BROKEN: list[tuple[str, Any, str]] = [
    ("not json", '{ "version": "1", ', "not valid JSON"),
    ("empty models", {"version": "1", "models": []}, "models"),
    ("no version", {"models": [_minimal_model()]}, "version"),
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
        "quality default",
        {"version": "1", "models": [_minimal_model(qualities=["720p"], default_quality="4k")]},
        "default_quality",
    ),
    ("audio default", {"version": "1", "models": [_minimal_model(audio_option=True)]}, "audio"),
    (
        "image required",
        {"version": "1", "models": [_minimal_model(image_required=True)]},
        "image_required",
    ),
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
