"""Turn a capture of EvoLink's price list into the shipped snapshot bot/data/pricing-rules.json.

    python scripts/make_price_snapshot.py CAPTURE.json [--out bot/data/pricing-rules.json]

CAPTURE.json is the body of `GET https://api.evolink.ai/v1/catalog/pricing-rules?view=full`
(`{"meta": {...}, "models": [...]}`). The snapshot keeps `meta` whole (catalog_version,
pricing_version, updated_at, fresh_until, ...), a `snapshot` note (the capture's file name,
sha256 and model count), and of the models only the video ones (`modality` "video"), each
with only what bot/pricing reads: the offer facts, `parameters`, and per component its id,
role, unit, sku, billing rule and unit size, status, rate and minimum (uc and credits),
condition, quantity rule, rounding and tiers. Dropped: display sizes, labels, dimensions,
official (list) rates, effective dates.

Invariant: the snapshot is written only if bot.domain.pricing parses all of it (an operator,
rounding
or variable type the calculator does not know stops the script, named), so a shipped snapshot
always loads. One model per line keeps the next capture's diff readable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.domain.pricing import PriceList, PricingError  # noqa: E402

MODEL_FIELDS = (
    "model_id",
    "product_id",
    "operation",
    "modality",
    "lifecycle",
    "pricing_status",
    "settlement_basis",
    "policy_version",
    "policy_checksum",
    "policy_source",
    "parameters",
)
COMPONENT_FIELDS = (
    "id",
    "role",
    "unit",
    "sku_id",
    "billing_rule",
    "billing_unit_size",
    "pricing_status",
    "rate",
    "minimum_charge",
    "condition",
    "quantity_rule",
    "rounding",
)
TIER_FIELDS = ("when", "multiplier", "sku_id", "rate", "minimum_charge", "pricing_status")
MONEY_FIELDS = ("uc", "credits")


def _keep(raw: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {k: raw[k] for k in fields if k in raw}


def _money(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in MONEY_FIELDS if k in raw}


def slim_model(model: dict[str, Any]) -> dict[str, Any]:
    """One model with only what the calculator reads."""
    kept = _keep(model, MODEL_FIELDS)
    components = []
    for comp in model.get("components") or []:
        c = _keep(comp, COMPONENT_FIELDS)
        for money in ("rate", "minimum_charge"):
            if isinstance(c.get(money), dict):
                c[money] = _money(c[money])
        tiers = []
        for tier in comp.get("tiers") or []:
            t = _keep(tier, TIER_FIELDS)
            for money in ("rate", "minimum_charge"):
                if isinstance(t.get(money), dict):
                    t[money] = _money(t[money])
            tiers.append(t)
        c["tiers"] = tiers
        components.append(c)
    kept["components"] = components
    return kept


def operators(models: list[dict[str, Any]]) -> Counter[str]:
    """How often each operator occurs in the models' expressions."""
    seen: Counter[str] = Counter()

    def walk(node: Any) -> None:
        if isinstance(node, dict) and "op" in node:
            seen[str(node["op"])] += 1
            for arg in node.get("args") or []:
                walk(arg)
            walk(node.get("key"))

    for model in models:
        for comp in model.get("components") or []:
            walk(comp.get("condition"))
            walk(comp.get("quantity_rule"))
            for tier in comp.get("tiers") or []:
                walk(tier.get("when"))
    return seen


def render(snapshot: dict[str, Any]) -> str:
    """The snapshot as JSON text, one model per line."""
    head = {k: v for k, v in snapshot.items() if k != "models"}
    lines = [json.dumps(m, separators=(",", ":"), ensure_ascii=True) for m in snapshot["models"]]
    text = json.dumps(head, indent=1, ensure_ascii=True)[:-2]
    return text + ',\n "models": [\n' + ",\n".join(lines) + "\n ]\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("capture", type=Path, help="the pricing-rules?view=full JSON capture")
    parser.add_argument("--out", type=Path, default=ROOT / "bot" / "data" / "pricing-rules.json")
    args = parser.parse_args(argv)

    data = args.capture.read_bytes()
    capture = json.loads(data)
    models = [m for m in capture.get("models", []) if m.get("modality") == "video"]
    snapshot = {
        "meta": capture.get("meta", {}),
        "snapshot": {
            "capture": args.capture.name,
            "capture_sha256": hashlib.sha256(data).hexdigest(),
            "capture_models": len(capture.get("models", [])),
            "kept": "modality = video",
            "made_by": "scripts/make_price_snapshot.py",
        },
        "models": [slim_model(m) for m in sorted(models, key=lambda m: str(m.get("model_id")))],
    }
    text = render(snapshot)
    try:
        prices = PriceList.from_json(json.loads(text), source=f"snapshot of {args.capture.name}")
    except PricingError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="ascii")
    used = operators(snapshot["models"])
    offered = sum(1 for m in prices if m.offered)
    print(f"{args.out}: {len(prices)} video models ({offered} offered), {len(text):,} bytes")
    print(f"pricing_version {prices.meta.pricing_version}, updated_at {prices.meta.updated_at}")
    print("operators: " + ", ".join(f"{op} {n}" for op, n in used.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
