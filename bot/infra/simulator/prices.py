"""The simulator's price list: EvoLink's `GET /v1/catalog/pricing-rules?view=full`, served from
the snapshot the package ships (bot/data/pricing-rules.json), changed by two knobs.

- `SimulatorConfig.price_factors`: model id (or "*" for every model) -> a factor applied to
  every rate and minimum charge of the model's components and tiers (rounded half up to whole
  uc; `credits` rewritten to match, so the list still loads);
- `SimulatorConfig.retired`: model id -> "absent" (left out of the list), "unavailable"
  (`pricing_status`) or any other word, which becomes its `lifecycle` ("retired", ...).

Invariants: the served list and the one billing prices from are the same list (one
function makes both, `served`); the snapshot itself is never changed; a list changed by the
knobs carries another `pricing_version` (and `catalog_version` when a model was retired or
left out) than the snapshot, with `updated_at` the time that version was first made, so a
client can tell a changed list from the one it has. Unknown model ids in the knobs are
ignored (as if the change were for a model the list does not have).
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

from bot.domain.pricing import PriceList
from bot.infra.simulator.world import SimulatorConfig

_SNAPSHOT = "data/pricing-rules.json"
_UC_PER_CREDIT = Decimal(10_000)
_made: dict[str, tuple[dict[str, Any], PriceList]] = {}  # by knob state


@functools.cache
def _snapshot() -> dict[str, Any]:
    raw = json.loads(resources.files("bot").joinpath(_SNAPSHOT).read_text("utf-8"))
    assert isinstance(raw, dict)
    return raw


def _scaled(money: dict[str, Any], factor: Decimal) -> dict[str, Any]:
    uc = (Decimal(money["uc"]) * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    credits = (uc / _UC_PER_CREDIT).normalize()
    return {"uc": str(int(uc)), "credits": f"{credits:f}"}


def _scale_model(model: dict[str, Any], factor: Decimal) -> None:
    for component in model.get("components") or []:
        for priced in [component, *(component.get("tiers") or [])]:
            for key in ("rate", "minimum_charge"):
                if isinstance(priced.get(key), dict):
                    priced[key] = _scaled(priced[key], factor)


def _state(config: SimulatorConfig) -> str:
    factors = sorted((k, str(v)) for k, v in config.price_factors.items())
    return json.dumps([factors, sorted(config.retired.items())])


def served(config: SimulatorConfig) -> tuple[dict[str, Any], PriceList]:
    """(the JSON served, the same list parsed) for the knobs as they are now."""
    state = _state(config)
    if state in _made:
        return _made[state]
    raw = _snapshot()
    if not config.price_factors and not config.retired:
        made = (raw, PriceList.from_json(raw, source="simulated price list"))
        _made[state] = made
        return made
    raw = copy.deepcopy(raw)
    models: list[dict[str, Any]] = []
    for model in raw["models"]:
        model_id = model.get("model_id")
        factor = config.price_factors.get(model_id, config.price_factors.get("*"))
        if factor is not None and Decimal(factor) != 1:
            _scale_model(model, Decimal(factor))
        change = config.retired.get(model_id)
        if change == "absent":
            continue
        if change == "unavailable":
            model["pricing_status"] = "unavailable"
        elif change is not None:
            model["lifecycle"] = change
        models.append(model)
    raw["models"] = models
    digest = hashlib.sha256(state.encode()).hexdigest()
    meta = raw.setdefault("meta", {})
    now = datetime.datetime.now(datetime.UTC)
    meta["pricing_version"] = f"{meta.get('pricing_version', 'prc')}-sim{digest[:12]}"
    if config.retired:
        meta["catalog_version"] = f"{meta.get('catalog_version', 'cat')}-sim{digest[:12]}"
    meta["updated_at"] = now.isoformat().replace("+00:00", "Z")
    meta["fresh_until"] = (now + datetime.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    made = (raw, PriceList.from_json(raw, source="simulated price list"))
    _made[state] = made
    return made
