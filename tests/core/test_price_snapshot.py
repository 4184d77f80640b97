"""The shipped price snapshot (bot/data/pricing-rules.json): it is the 2026-10-10 capture of
EvoLink's public price list, cut to its video models by scripts/make_price_snapshot.py (tested
here on a small capture), and it reproduces every default price (every variable at its listed
default) that an independent evaluator of the same capture published, copied here as literal
figures."""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.pricing import PriceList, PricingError
from tests.core.test_pricing_models import GEMINI

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prices() -> PriceList:
    return PriceList.load()


def test_the_snapshot_is_the_2026_10_10_capture_of_video_models(prices: PriceList) -> None:
    assert prices.meta.pricing_version == "prc_8f4a873281b23540f02304d1"
    assert prices.meta.catalog_version == "cat_ee94a2120e4b53ca78cbeb30"
    assert prices.meta.updated_at == "2026-10-10T06:52:34.303000193Z"
    assert prices.meta.fresh_until == "2026-10-10T06:57:00Z"
    assert prices.meta.price_scope == "public_default"
    assert len(prices) == 88
    assert {m.modality for m in prices} == {"video"}
    assert [m.model_id for m in prices if not m.offered] == ["seedance-asset-upload"]
    raw = json.loads((ROOT / "bot" / "data" / "pricing-rules.json").read_text("utf-8"))
    assert raw["snapshot"]["capture_sha256"] == (
        "c73aadbc34a3f9680e2384a64d42eaf606ce8c11f02003859326c8f29c590bfe"
    )


def _video_model(quantity: dict[str, Any], **component: Any) -> dict[str, Any]:
    return {
        "model_id": "m",
        "modality": "video",
        "lifecycle": "active",
        "pricing_status": "available",
        "policy_source": "published",
        "parameters": [{"name": "x", "type": "decimal", "default": "1"}],
        "components": [
            {
                "id": "c",
                "role": "video_output",
                "unit": "output_second",
                "pricing_status": "available",
                "rate": {"uc": "10000", "credits": "1", "cny": "0.1", "usd": "0.01470588"},
                "minimum_charge": {"uc": "0", "credits": "0"},
                "quantity_rule": quantity,
                "rounding": {"point": "per_component_subtotal", "mode": "half_up"},
                "tiers": [],
                **component,
            }
        ],
    }


def test_the_snapshot_script_keeps_only_what_the_calculator_reads(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_price_snapshot", ROOT / "scripts" / "make_price_snapshot.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    x = {"op": "variable", "name": "x"}
    video = _video_model(x, official_rate={"uc": "1"}, effective_at="2026-10-04T19:17:23.652Z")
    text = dict(_video_model(x), model_id="t", modality="text")
    capture = tmp_path / "capture.json"
    capture.write_text(json.dumps({"meta": {"pricing_version": "prc_x"}, "models": [text, video]}))
    out = tmp_path / "snapshot.json"
    assert script.main([str(capture), "--out", str(out)]) == 0
    written = out.read_text()
    snapshot = PriceList.load(out)
    assert snapshot.model_ids == ("m",) and snapshot.meta.pricing_version == "prc_x"
    for dropped in ("effective_at", "official_rate", "cny", "usd"):
        assert dropped not in written
    assert snapshot.model("m").quote({"x": 3}).uc == 30_000
    broken = _video_model({"op": "pow", "args": [x, x]})
    capture.write_text(json.dumps({"meta": {}, "models": [broken]}))
    assert script.main([str(capture), "--out", str(tmp_path / "no.json")]) == 1
    assert not (tmp_path / "no.json").exists()


# Every default price published with the capture (by an independent evaluator of its rules).
DEFAULT_CREDITS = {
    "doubao-seedance-1.0-pro-fast": "9.9",
    "grok-imagine-image-to-video": "8.16",
    "grok-imagine-text-to-video": "8.16",
    "grok-imagine-video-1.0-i2v": "14.3752",
    "grok-imagine-video-1.0-t2v": "14.28",
    "grok-imagine-video-1.5-preview": "22.848",
    "happyhorse-1.0-image-to-video": "38.08",
    "happyhorse-1.0-reference-to-video": "38.08",
    "happyhorse-1.0-text-to-video": "38.08",
    "happyhorse-1.0-video-edit": "228.48",
    "happyhorse-1.1-image-to-video": "38.08",
    "happyhorse-1.1-reference-to-video": "38.08",
    "happyhorse-1.1-text-to-video": "38.08",
    "kling-custom-element": "0.001",
    "kling-o1-image-to-video": "40",
    "kling-o1-video-edit": "36",
    "kling-o1-video-edit-fast": "40.8",
    "kling-o3-image-to-video": "27",
    "kling-o3-reference-to-video": "40.5",
    "kling-o3-text-to-video": "27",
    "kling-o3-video-edit": "40.5",
    "kling-v2.6-motion-control": "45",
    "kling-v3-image-to-video": "27",
    "kling-v3-motion-control": "81.648",
    "kling-v3-text-to-video": "27",
    "kling-v3-turbo-image-to-video": "36",
    "kling-v3-turbo-text-to-video": "36",
    "minimax-h3-image-to-video": "20.672",
    "minimax-h3-max-image-to-video": "25.84",
    "minimax-h3-max-reference-to-video": "25.84",
    "minimax-h3-max-text-to-video": "25.84",
    "minimax-h3-max-turbo-image-to-video": "12.92",
    "minimax-h3-max-turbo-text-to-video": "12.92",
    "minimax-h3-reference-to-video": "20.672",
    "minimax-h3-text-to-video": "20.672",
    "seedance-1.5-pro": "17.784",
    "seedance-2.0-fast-image-to-video": "41.0065",
    "seedance-2.0-fast-reference-to-video": "41.0065",
    "seedance-2.0-fast-text-to-video": "41.0065",
    "seedance-2.0-image-to-video": "67.5",
    "seedance-2.0-mini-image-to-video": "13.5",
    "seedance-2.0-mini-reference-to-video": "13.5",
    "seedance-2.0-mini-text-to-video": "13.5",
    "seedance-2.0-reference-to-video": "67.5",
    "seedance-2.0-text-to-video": "67.5",
    "seedance-2.5-draft-to-video": "251.125",
    "seedance-2.5-image-to-video": "100.45",
    "seedance-2.5-reference-to-video": "100.45",
    "seedance-2.5-text-to-video": "100.45",
    "seedance-2.5-video-edit": "734.0886",
    "seedance-2.5-video-extend": "428.2184",
    "sora-2-preview": "46.08",
    "veo-3.1-fast-generate-preview": "38.016",
    "veo-3.1-generate-preview": "101.376",
    "veo3-fast": "25.7",
    "veo3.1-fast": "21.6",
    "veo3.1-fast-extend": "12.1",
    "veo3.1-pro": "162",
    "videoretalk": "48",
    "wan2.5-image-to-video": "25.5",
    "wan2.5-text-to-video": "25.5",
    "wan2.6-image-to-video": "23.8",
    "wan2.6-image-to-video-flash": "11.9",
    "wan2.6-reference-video": "47.6",
    "wan2.6-reference-video-flash": "23.8",
    "wan2.6-text-to-video": "23.8",
    "wan2.7-image-to-video": "27.2",
    "wan2.7-reference-video": "27.2",
    "wan2.7-text-to-video": "27.2",
    "wan2.7-video-edit": "108.8",
    "wan3.0-image-to-video": "25.5",
    "wan3.0-prime-image-to-video": "40.4831",
    "wan3.0-prime-reference-video": "40.4831",
    "wan3.0-prime-text-to-video": "40.4831",
    "wan3.0-reference-video": "25.5",
    "wan3.0-text-to-video": "25.5",
}
# Published as "needs input" (no default for a variable the price reads), not as a price.
NEEDS_INPUT = {
    **dict.fromkeys(GEMINI, "input_tokens"),
    "omnihuman-1.5": "duration_seconds",
    "tencent-video-upscale": "output_seconds",
}


@pytest.mark.parametrize(("model_id", "want"), sorted(DEFAULT_CREDITS.items()))
def test_the_published_default_price(prices: PriceList, model_id: str, want: str) -> None:
    assert prices.model(model_id).quote().credits == Decimal(want)


@pytest.mark.parametrize(("model_id", "missing"), sorted(NEEDS_INPUT.items()))
def test_a_default_request_that_needs_input(prices: PriceList, model_id: str, missing: str) -> None:
    with pytest.raises(PricingError, match=missing):
        prices.model(model_id).quote()


def test_the_defaults_cover_every_model(prices: PriceList) -> None:
    # seedance-asset-upload (published at 0.001 credits, pricing_status "unavailable") is not
    # offered, so it has no price: tests/core/test_pricing.py checks the refusal.
    listed = set(DEFAULT_CREDITS) | set(NEEDS_INPUT) | {"seedance-asset-upload"}
    assert listed == set(prices.model_ids)
