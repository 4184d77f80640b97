"""Pricing one request: bind its variables, charge every component, add up — exactly.

The algorithm (EvoLink's, as its price list states it), per component, on integer uc
(1 credit = 10,000 uc) with `fractions.Fraction` in between:
1. a `condition` that is false: the component is skipped and charges 0 (no minimum either);
2. the tier whose `when` holds is selected (none: the component itself; two or more: error);
   the selected rate, minimum and status apply; a status other than "available" is an error;
3. q = the quantity rule (negative: error); m = the tier's multiplier (else 1);
4. subtotal by the rounding point — `per_component_subtotal`: round(q × rate);
   `per_quantity`: round(q × m) × rate / m; `per_tier`: q × rate (rates are whole uc already)
   — with mode `half_up` (halves away from zero), `ceil` or `floor`;
5. charge = max(subtotal, minimum) — the minimum applies per component — and must be a
   whole, non-negative number of uc (else error);
6. total = the sum of the charges; credits = total / 10,000 (exact, at most 4 places).

Invariants: variables are bound before anything is evaluated — a name the model does not
declare is refused by name, a value is type-, range- and choice-checked
(bot/domain/pricing/rules.py),
a float is refused; an omitted variable takes its published default (recorded in
`Quote.defaulted`) unless `defaults=False` or it is a usage variable; one the rules read and
nobody gave is a PricingError naming it. A request for which every component is skipped is
not priced (PricingError), never quoted at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from bot.domain.pricing.errors import PricingError
from bot.domain.pricing.expressions import DECIMAL_RE, Expr, Value
from bot.domain.pricing.rules import UC_PER_CREDIT, Component, Variable


def credits_of(uc: int) -> Decimal:
    """uc as credits, exact: `Decimal("46.08")` for 460,800 uc (no exponent, no padding)."""
    if uc % UC_PER_CREDIT == 0:
        return Decimal(uc // UC_PER_CREDIT)
    return Decimal(uc).scaleb(-4).normalize()


def round_exact(x: Fraction, mode: str) -> int:
    """x rounded to an integer: `floor`, `ceil`, or `half_up` (a half goes away from zero)."""
    if mode == "floor":
        return x.numerator // x.denominator
    if mode == "ceil":
        return -(-x.numerator // x.denominator)
    if mode == "half_up":
        magnitude = abs(x) + Fraction(1, 2)
        whole = magnitude.numerator // magnitude.denominator
        return whole if x >= 0 else -whole
    raise PricingError(f"unknown rounding mode '{mode}'.", name=mode)


@dataclass(frozen=True)
class QuoteLine:
    """How one component was charged. `applied` False: its condition was false (0 uc)."""

    component_id: str
    sku_id: str
    unit: str
    applied: bool
    quantity: Fraction = Fraction(0)
    tier: int | None = None
    multiplier: Fraction = Fraction(1)
    rate_uc: int = 0
    subtotal_uc: Fraction = Fraction(0)
    minimum_uc: int = 0
    charge_uc: int = 0

    @property
    def minimum_applied(self) -> bool:
        return self.applied and self.subtotal_uc < self.minimum_uc

    @property
    def credits(self) -> Decimal:
        return credits_of(self.charge_uc)


@dataclass(frozen=True)
class Quote:
    """A price worked out from the published rules (public default prices, no discounts).

    `settlement_basis` says what it is: "request_only" — the charge; "request_then_actual" —
    what EvoLink reserves, the final charge follows the actual output; "actual_usage" — an
    estimate from the expected usage given."""

    model_id: str
    uc: int
    lines: tuple[QuoteLine, ...]
    variables: Mapping[str, Value]
    defaulted: tuple[str, ...]
    settlement_basis: str
    pricing_version: str
    catalog_version: str
    policy_checksum: str

    @property
    def credits(self) -> Decimal:
        return credits_of(self.uc)

    @property
    def breakdown(self) -> dict[str, Decimal]:
        """Credits per component id (skipped components included, at 0)."""
        return {line.component_id: line.credits for line in self.lines}


def bind(
    model_id: str,
    declared: Mapping[str, Variable],
    given: Mapping[str, object],
    *,
    defaults: bool,
) -> tuple[dict[str, Value], tuple[str, ...]]:
    """The checked variables (and the names that took their default)."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise PricingError(
            f"{model_id}: unknown pricing variable '{unknown[0]}' (it prices by: {known}).",
            name=unknown[0],
            model_id=model_id,
        )
    env: dict[str, Value] = {}
    defaulted: list[str] = []
    for name, variable in declared.items():
        if name in given:
            env[name] = variable.check(given[name], model_id)
        elif defaults and not variable.required:
            env[name] = variable.check(variable.default, model_id)
            defaulted.append(name)
    return env, tuple(defaulted)


def _truth(expr: Expr, env: Mapping[str, Value], model_id: str, what: str) -> bool:
    value = expr.evaluate(env, model_id)
    if not isinstance(value, bool):
        raise PricingError(f"{model_id}: {what} is {value!r}, not true/false.", model_id=model_id)
    return value


def charge(component: Component, env: Mapping[str, Value], model_id: str) -> QuoteLine:
    """One component's charge for the bound variables (steps 1-5 above)."""
    what = f"component '{component.id}'"
    if component.condition and not _truth(component.condition, env, model_id, what):
        return QuoteLine(component.id, component.sku_id, component.unit, applied=False)
    matches = [
        i for i, t in enumerate(component.tiers) if _truth(t.when, env, model_id, f"{what} tier")
    ]
    if len(matches) > 1:
        raise PricingError(f"{model_id}: tiers {matches} of {what} all match.", name=component.id)
    tier = component.tiers[matches[0]] if matches else None
    status = tier.pricing_status if tier else component.pricing_status
    if status != "available":
        raise PricingError(
            f"{model_id}: {what} is {status}, not available.", name=component.id, model_id=model_id
        )
    rate = tier.rate_uc if tier else component.rate_uc
    minimum = tier.minimum_uc if tier else component.minimum_uc
    multiplier = tier.multiplier if tier else Fraction(1)
    value = component.quantity.evaluate(env, model_id)
    if isinstance(value, str) and DECIMAL_RE.fullmatch(value):
        value = Fraction(value)  # a constant quantity, e.g. "1" per request
    if not isinstance(value, Fraction) or value < 0:
        raise PricingError(
            f"{model_id}: {what} has quantity {value!r}, not a number >= 0.",
            name=component.id,
            model_id=model_id,
        )
    mode = component.rounding_mode
    if component.rounding_point == "per_component_subtotal":
        subtotal = Fraction(round_exact(value * rate, mode))
    elif component.rounding_point == "per_quantity":
        subtotal = round_exact(value * multiplier, mode) * Fraction(rate) / multiplier
    else:  # per_tier: the rate rounded; rates are whole uc, so q × rate
        subtotal = value * rate
    total = max(subtotal, Fraction(minimum))
    if total.denominator != 1:
        raise PricingError(
            f"{model_id}: {what} comes to {total} uc, not a whole number.", name=component.id
        )
    return QuoteLine(
        component_id=component.id,
        sku_id=tier.sku_id if tier else component.sku_id,
        unit=component.unit,
        applied=True,
        quantity=value,
        tier=matches[0] if matches else None,
        multiplier=multiplier,
        rate_uc=rate,
        subtotal_uc=subtotal,
        minimum_uc=minimum,
        charge_uc=total.numerator,
    )


def charge_all(
    model_id: str, components: Sequence[Component], env: Mapping[str, Value]
) -> tuple[int, tuple[QuoteLine, ...]]:
    """The total uc and the lines; refuses a request no component prices."""
    lines = tuple(charge(c, env, model_id) for c in components)
    if not any(line.applied for line in lines):
        raise PricingError(
            f"{model_id}: no priced component applies to these variables "
            f"({', '.join(f'{k}={v}' for k, v in env.items()) or 'none'}).",
            name=model_id,
            model_id=model_id,
        )
    return sum(line.charge_uc for line in lines), lines
