"""The price list (`PriceList`) and one model's offer and rules (`ModelPricing`).

The file is `{"meta": {...}, "models": [...]}` — EvoLink's `GET /v1/catalog/pricing-rules
?view=full` response, or the snapshot of its video models that scripts/make_price_snapshot.py
ships as bot/data/pricing-rules.json. `meta` carries `catalog_version`, `pricing_version`,
`price_scope` ("public_default": no account discounts), `currency`, `exchange_rate_version`,
`updated_at` and `fresh_until`; each model `model_id` (the id sent as `model`), `product_id`,
`operation`, `modality`, `lifecycle`, `pricing_status`, `settlement_basis`, `policy_version`,
`policy_checksum`, `policy_source`, `parameters[]` and `components[]` (bot/domain/pricing/rules.py).

Invariants: a list loads whole or not at all (every model and expression parsed and checked,
model ids unique); a model is `offered` only when `lifecycle` is "active", `pricing_status`
"available" and `policy_source` "published" — `quote` refuses any other by name; every quote
carries the list's `pricing_version` and the model's `policy_checksum`, so a price can be
traced to the rules that made it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import cast

from bot.domain.pricing.errors import PricingError
from bot.domain.pricing.expressions import Expr, key_text
from bot.domain.pricing.quote import Quote, bind, charge_all
from bot.domain.pricing.rules import Component, Variable, parse_component, parse_variable

PACKAGED = "data/pricing-rules.json"
_META_FIELDS = (
    "schema_version",
    "catalog_version",
    "pricing_version",
    "price_scope",
    "currency",
    "exchange_rate_version",
    "updated_at",
    "fresh_until",
)


@dataclass(frozen=True)
class PriceListMeta:
    """The list's versions and times, as published (texts; "" when absent)."""

    schema_version: str = ""
    catalog_version: str = ""
    pricing_version: str = ""
    price_scope: str = ""
    currency: str = ""
    exchange_rate_version: str = ""
    updated_at: str = ""
    fresh_until: str = ""


@dataclass(frozen=True)
class ModelPricing:
    """One model: its offer facts, its variables (names, types, accepted values), its rules."""

    model_id: str
    product_id: str
    operation: str
    modality: str
    lifecycle: str
    pricing_status: str
    settlement_basis: str
    policy_version: int
    policy_checksum: str
    policy_source: str
    variables: Mapping[str, Variable]
    components: tuple[Component, ...]
    meta: PriceListMeta = field(default_factory=PriceListMeta)

    @property
    def offered(self) -> bool:
        """EvoLink publishes a price for it now (active, available, published)."""
        return (
            self.lifecycle == "active"
            and self.pricing_status == "available"
            and self.policy_source == "published"
        )

    def quote(
        self, variables: Mapping[str, object] | None = None, *, defaults: bool = True
    ) -> Quote:
        """The price of a request with these pricing variables (the rules' own names).

        Values: int / `Decimal` / decimal text for numbers (never float), text for enums (an int
        is accepted for a numeric-looking enum such as sora's duration "8"), bool for booleans.
        Omitted variables take their published default (listed in `Quote.defaulted`) unless
        `defaults` is False; usage variables (`*_tokens`) and ones without a default must be
        given. Raises PricingError naming the model, variable or component at fault."""
        if not self.offered:
            raise PricingError(
                f"{self.model_id} is not offered (lifecycle {self.lifecycle}, pricing_status "
                f"{self.pricing_status}, policy_source {self.policy_source}).",
                name=self.model_id,
                model_id=self.model_id,
            )
        env, defaulted = bind(self.model_id, self.variables, variables or {}, defaults=defaults)
        total, lines = charge_all(self.model_id, self.components, env)
        return Quote(
            model_id=self.model_id,
            uc=total,
            lines=lines,
            variables=MappingProxyType(env),
            defaulted=defaulted,
            settlement_basis=self.settlement_basis,
            pricing_version=self.meta.pricing_version,
            catalog_version=self.meta.catalog_version,
            policy_checksum=self.policy_checksum,
        )


def _gate(condition: Expr | None) -> tuple[str, set[str]] | None:
    """(variable, allowed values) when `condition` is `var = c` or `var = c1 or var = c2 ...`."""
    if condition is None:
        return None
    terms = condition.args if condition.op == "or" else (condition,)
    names, values = set(), set()
    for term in terms:
        if term.op != "eq":
            return None
        var, const = term.args
        if var.op != "variable" or const.op != "constant" or const.value is None:
            return None
        names.add(var.name)
        values.add(key_text(const.value))
    return (cast(str, names.pop()), values) if len(names) == 1 else None


def _number_order(text: str) -> tuple[int, Fraction | str]:
    try:
        return (0, Fraction(text))
    except ValueError:
        return (1, text)


def with_choices(
    variables: dict[str, Variable], components: tuple[Component, ...]
) -> dict[str, Variable]:
    """Fill each variable's `choices` from lookup tables keyed by it and, when every
    component is gated by a `var = c ...` condition on the same variable, from those gates
    (a value none of them allows would leave nothing to price)."""
    tables: dict[str, set[str]] = {}
    for component in components:
        for expr in component.expressions():
            for node in expr.walk():
                if node.op == "lookup" and node.key and node.key.op == "variable":
                    name = cast(str, node.key.name)
                    keys = set(node.table)
                    tables[name] = tables[name] & keys if name in tables else keys
    gates = [_gate(c.condition) for c in components]
    if components and all(gates) and len({g[0] for g in gates if g}) == 1:
        name = cast(tuple[str, set[str]], gates[0])[0]
        allowed = set().union(*(g[1] for g in gates if g))  # outside it no component applies
        tables[name] = tables[name] & allowed if name in tables else allowed
    result = {}
    for name, variable in variables.items():
        choices: tuple[str, ...] | None = variable.values
        if name in tables:
            keys = tables[name]
            if choices is not None:
                choices = tuple(v for v in choices if v in keys)
            else:
                choices = tuple(sorted(keys, key=_number_order))
        result[name] = replace(variable, choices=choices)
    return result


def parse_model(raw: object, meta: PriceListMeta) -> ModelPricing:
    """One `models[]` entry, checked whole."""
    if not isinstance(raw, dict) or not isinstance(raw.get("model_id"), str):
        raise PricingError("A price list model has no model_id.")
    model_id = cast(str, raw["model_id"])
    raw_parameters = raw.get("parameters") or []
    raw_components = raw.get("components") or []
    if not isinstance(raw_parameters, list) or not isinstance(raw_components, list):
        raise PricingError(f"{model_id}: parameters/components are not lists.", name=model_id)
    variables: dict[str, Variable] = {}
    for p in raw_parameters:
        variable = parse_variable(p, model_id)
        if variable.name in variables:
            raise PricingError(f"{model_id}: variable {variable.name} twice.", name=variable.name)
        variables[variable.name] = variable
    components = tuple(parse_component(c, list(variables), model_id) for c in raw_components)
    if len({c.id for c in components}) != len(components):
        raise PricingError(f"{model_id}: two components share an id.", name=model_id)

    def text(key: str) -> str:
        return str(raw.get(key, ""))

    version = raw.get("policy_version", 0)
    return ModelPricing(
        model_id=model_id,
        policy_version=version if isinstance(version, int) else 0,
        variables=with_choices(variables, components),
        components=components,
        meta=meta,
        product_id=text("product_id"),
        operation=text("operation"),
        modality=text("modality"),
        lifecycle=text("lifecycle"),
        pricing_status=text("pricing_status"),
        settlement_basis=text("settlement_basis"),
        policy_checksum=text("policy_checksum"),
        policy_source=text("policy_source"),
    )


class PriceList:
    """Every model of one price list, by id."""

    def __init__(self, meta: PriceListMeta, models: Mapping[str, ModelPricing], source: str):
        self.meta = meta
        self.source = source
        self._models = dict(models)

    @classmethod
    def from_json(cls, raw: object, *, source: str = "price list") -> PriceList:
        """A parsed price list from its JSON value (refused whole on any error)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
            raise PricingError(f"The {source} has no models list.", name=source)
        raw_meta = raw.get("meta") or {}
        if not isinstance(raw_meta, dict):
            raise PricingError(f"The {source} has a meta that is not an object.", name=source)
        meta = PriceListMeta(**{k: str(raw_meta[k]) for k in _META_FIELDS if k in raw_meta})
        models: dict[str, ModelPricing] = {}
        for entry in raw["models"]:
            model = parse_model(entry, meta)
            if model.model_id in models:
                raise PricingError(
                    f"The {source} lists {model.model_id} twice.", name=model.model_id
                )
            models[model.model_id] = model
        return cls(meta, models, source)

    @classmethod
    def load(cls, path: Path | str | None = None) -> PriceList:
        """The shipped snapshot (None: bot/data/pricing-rules.json) or a file like it."""
        if path is None:
            source = f"packaged price list (bot/{PACKAGED})"
            try:
                text = resources.files("bot").joinpath(PACKAGED).read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PricingError(f"The {source} cannot be read: {exc}", name=source) from None
        else:
            source = f"price list {path}"
            try:
                text = Path(path).read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PricingError(f"The {source} cannot be read: {exc}", name=source) from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PricingError(f"The {source} is not JSON: {exc}", name=source) from None
        return cls.from_json(raw, source=source)

    def model(self, model_id: str) -> ModelPricing:
        """The model's pricing, or a PricingError naming the unknown id."""
        found = self._models.get(model_id)
        if found is None:
            raise PricingError(
                f"{model_id!r} is not in the {self.source} ({self.meta.pricing_version}).",
                name=model_id,
                model_id=model_id,
            )
        return found

    @property
    def model_ids(self) -> tuple[str, ...]:
        return tuple(self._models)

    def __iter__(self) -> Iterator[ModelPricing]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models
