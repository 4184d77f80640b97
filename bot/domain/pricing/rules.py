"""One model's pricing rules as typed data: its variables and its priced components.

Shapes read (the price list's `models[]` entries; see bot/domain/pricing/__init__.py for the whole):
- `parameters[]`: `{name, type, values?, minimum?, maximum?, default?}` — `type` is one of
  integer, decimal, enum, boolean; numbers are decimal strings, a boolean default a JSON
  boolean; no `default` means the caller must give it. These are the rules' *variables*.
- `components[]`: `{id, role, unit, sku_id, billing_rule, billing_unit_size, pricing_status,
  rate, minimum_charge, condition?, quantity_rule, rounding: {point, mode}, tiers[]}`; money
  objects carry `uc` (the integer base unit: 1 credit = 10,000 uc) and `credits`.
- `tiers[]`: `{when, multiplier, sku_id, rate, minimum_charge, pricing_status}`; a tier's
  `rate` already includes its multiplier.

Invariants: money is integer uc (checked: `credits` = uc / 10,000 exactly, else the list is
refused); every expression is parsed (bot/domain/pricing/expressions.py) against the model's
declared
variables; rounding points/modes and variable types outside the language are refused by name;
`billing_unit_size` N != 1 is accepted only when the quantity rule itself is "x / N" (the
quantity is then already in billed units — e.g. `input_tokens / 1000` for a per-1k-token rate —
so the size is recorded, never applied a second time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal, cast

from bot.domain.pricing.errors import PricingError
from bot.domain.pricing.expressions import DECIMAL_RE, Expr, Value, parse_decimal, parse_expression

Kind = Literal["integer", "decimal", "enum", "boolean"]
KINDS: tuple[Kind, ...] = ("integer", "decimal", "enum", "boolean")
ROUNDING_POINTS = ("per_component_subtotal", "per_quantity", "per_tier")
ROUNDING_MODES = ("half_up", "ceil", "floor")
UC_PER_CREDIT = 10_000


def uc_of(raw: object, what: str) -> int:
    """A money object's integer uc, checked against its `credits` when present."""
    if not isinstance(raw, dict):
        raise PricingError(f"{what} is not a money object.", name=what)
    uc = raw.get("uc")
    if not isinstance(uc, str) or not uc.isascii() or not uc.isdigit():
        raise PricingError(f"{what} has uc {uc!r}, not a whole number of uc.", name=what)
    credits = raw.get("credits")
    if credits is not None and parse_decimal(credits, what) != Fraction(int(uc), UC_PER_CREDIT):
        raise PricingError(f"{what}: {credits} credits is not {uc} uc / 10,000.", name=what)
    return int(uc)


def _exact(text: object, what: str) -> Decimal:
    parse_decimal(text, what)  # refuses anything but a plain decimal string
    return Decimal(str(text))


@dataclass(frozen=True)
class Variable:
    """A pricing variable of one model and the values its rules accept.

    `values`: the declared enumeration (enum variables); `choices`: the values the rules
    actually price — the enumeration narrowed by the keys of lookup tables keyed by this
    variable, or, for a number, the values a gate condition allows (e.g. Veo 3.1 prices
    duration_seconds only = 4, 6 or 8). `usage` variables (expected token counts) never take
    their listed default (0, which would price the request at nothing)."""

    name: str
    kind: Kind
    values: tuple[str, ...] | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    default: Decimal | str | bool | None = None
    choices: tuple[str, ...] | None = None
    usage: bool = False

    @property
    def required(self) -> bool:
        """True when a quote must be given this variable (no default is ever taken)."""
        return self.default is None or self.usage

    def check(self, given: object, model_id: str) -> Value:
        """`given` as the rules' value (Fraction, enum text or bool), or a PricingError."""
        where = f"{model_id}: variable '{self.name}'"
        if self.kind == "boolean":
            if not isinstance(given, bool):
                raise self._refuse(f"{where} must be true or false, got {given!r}.", model_id)
            return given
        if self.kind == "enum":
            text = str(given) if isinstance(given, int) and not isinstance(given, bool) else given
            allowed = self.choices if self.choices is not None else self.values or ()
            if not isinstance(text, str) or text not in allowed:
                raise self._refuse(
                    f"{where} must be one of {', '.join(allowed)}, got {given!r}.", model_id
                )
            return text
        number = self._number(given, where, model_id)
        if self.minimum is not None and number < Fraction(self.minimum):
            raise self._refuse(f"{where} is {given}, below the minimum {self.minimum}.", model_id)
        if self.maximum is not None and number > Fraction(self.maximum):
            raise self._refuse(f"{where} is {given}, above the maximum {self.maximum}.", model_id)
        if self.choices is not None and not any(number == Fraction(c) for c in self.choices):
            raise self._refuse(
                f"{where} must be one of {', '.join(self.choices)}, got {given}.", model_id
            )
        return number

    def _number(self, given: object, where: str, model_id: str) -> Fraction:
        if isinstance(given, (bool, float)):
            kind = "a float" if isinstance(given, float) else "a boolean"
            raise self._refuse(f"{where} must be an exact number, not {kind}.", model_id)
        exact = (
            isinstance(given, int)
            or (isinstance(given, Decimal) and given.is_finite())
            or (isinstance(given, str) and DECIMAL_RE.fullmatch(given) is not None)
        )
        if not exact:
            raise self._refuse(f"{where} must be a number, got {given!r}.", model_id)
        number = Fraction(cast(int | Decimal | str, given))
        if self.kind == "integer" and number.denominator != 1:
            raise self._refuse(f"{where} must be a whole number, got {given}.", model_id)
        return number

    def _refuse(self, message: str, model_id: str) -> PricingError:
        return PricingError(message, name=self.name, model_id=model_id)


def parse_variable(raw: object, model_id: str) -> Variable:
    """One `parameters[]` entry (choices are filled in later, from the components)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise PricingError(f"{model_id}: a parameter without a name.", model_id=model_id)
    name = cast(str, raw["name"])
    what = f"{model_id} parameter {name}"
    kind = raw.get("type")
    if kind not in KINDS:
        raise PricingError(f"{what}: unknown type {kind!r}.", name=name, model_id=model_id)
    values: tuple[str, ...] | None = None
    if "values" in raw:
        listed = raw["values"]
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise PricingError(f"{what}: values must be texts.", name=name, model_id=model_id)
        values = tuple(listed)
    if kind == "enum" and not values:
        raise PricingError(f"{what}: an enum without values.", name=name, model_id=model_id)
    default: Decimal | str | bool | None = None
    if raw.get("default") is not None:
        given = raw["default"]
        if kind == "boolean":
            if not isinstance(given, bool):
                raise PricingError(f"{what}: default {given!r} is not a boolean.", name=name)
            default = given
        elif kind == "enum":
            default = str(given)
        else:
            default = _exact(given, f"{what} default")
    return Variable(
        name=name,
        kind=cast(Kind, kind),
        values=values,
        minimum=_exact(raw["minimum"], f"{what} minimum") if "minimum" in raw else None,
        maximum=_exact(raw["maximum"], f"{what} maximum") if "maximum" in raw else None,
        default=default,
        usage=name.endswith("tokens"),
    )


@dataclass(frozen=True)
class Tier:
    """A price step of a component, chosen when `when` holds; `rate_uc` includes `multiplier`."""

    when: Expr
    multiplier: Fraction
    sku_id: str
    rate_uc: int
    minimum_uc: int
    pricing_status: str


@dataclass(frozen=True)
class Component:
    """One priced line of a model: `quantity` units at `rate_uc`, rounded, at least `minimum_uc`."""

    id: str
    role: str
    unit: str
    sku_id: str
    billing_rule: str
    billing_unit_size: int
    pricing_status: str
    rate_uc: int
    minimum_uc: int
    quantity: Expr
    rounding_point: str
    rounding_mode: str
    condition: Expr | None = None
    tiers: tuple[Tier, ...] = ()

    def expressions(self) -> list[Expr]:
        """Every expression of the component: condition, quantity, tier conditions."""
        found = [self.quantity, *(t.when for t in self.tiers)]
        return [self.condition, *found] if self.condition else found


def _text(raw: Mapping[str, object], key: str, what: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise PricingError(f"{what}: '{key}' is missing.", name=key)
    return value


def parse_component(raw: object, declared: Sequence[str], model_id: str) -> Component:
    """One `components[]` entry, every expression checked against `declared`."""
    if not isinstance(raw, dict):
        raise PricingError(f"{model_id}: a component is not an object.", model_id=model_id)
    what = f"{model_id} component {raw.get('id')!r}"
    cid = _text(raw, "id", what)
    rounding = raw.get("rounding")
    if not isinstance(rounding, dict):
        raise PricingError(f"{what}: no rounding.", name=cid, model_id=model_id)
    point, mode = rounding.get("point"), rounding.get("mode")
    if point not in ROUNDING_POINTS:
        raise PricingError(f"{what}: unknown rounding point {point!r}.", name=str(point))
    if mode not in ROUNDING_MODES:
        raise PricingError(f"{what}: unknown rounding mode {mode!r}.", name=str(mode))

    def expr(node: object, part: str) -> Expr:
        return parse_expression(node, declared=declared, where=f"{what} {part}")

    tiers = []
    raw_tiers = raw.get("tiers") or []
    if not isinstance(raw_tiers, list):
        raise PricingError(f"{what}: tiers is not a list.", name=cid, model_id=model_id)
    for i, t in enumerate(raw_tiers):
        if not isinstance(t, dict):
            raise PricingError(f"{what}: tier {i} is not an object.", name=cid)
        tiers.append(
            Tier(
                when=expr(t.get("when"), f"tier {i} when"),
                multiplier=parse_decimal(t.get("multiplier", "1"), f"{what} tier {i} multiplier"),
                sku_id=str(t.get("sku_id", raw.get("sku_id", ""))),
                rate_uc=uc_of(t.get("rate"), f"{what} tier {i} rate"),
                minimum_uc=uc_of(t.get("minimum_charge"), f"{what} tier {i} minimum_charge"),
                pricing_status=_text(t, "pricing_status", f"{what} tier {i}"),
            )
        )
    size = raw.get("billing_unit_size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise PricingError(f"{what}: billing_unit_size {size!r}.", name="billing_unit_size")
    quantity = expr(raw.get("quantity_rule"), "quantity_rule")
    if size != 1 and not (
        quantity.op == "divide"
        and quantity.args[1].op == "constant"
        and quantity.args[1].value == str(size)
    ):
        raise PricingError(
            f"{what}: billing_unit_size {size} but the quantity rule does not divide by {size}.",
            name="billing_unit_size",
            model_id=model_id,
        )
    return Component(
        id=cid,
        role=_text(raw, "role", what),
        unit=_text(raw, "unit", what),
        sku_id=str(raw.get("sku_id", "")),
        billing_rule=str(raw.get("billing_rule", "")),
        billing_unit_size=size,
        pricing_status=_text(raw, "pricing_status", what),
        rate_uc=uc_of(raw.get("rate"), f"{what} rate"),
        minimum_uc=uc_of(raw.get("minimum_charge"), f"{what} minimum_charge"),
        quantity=quantity,
        rounding_point=cast(str, point),
        rounding_mode=cast(str, mode),
        condition=expr(raw["condition"], "condition") if raw.get("condition") else None,
        tiers=tuple(tiers),
    )
