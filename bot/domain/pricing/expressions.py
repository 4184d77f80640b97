"""The expression language of EvoLink's price list, parsed and evaluated exactly.

A node is a JSON object `{"op": ..., "args": [...]}`, or one of the leaves
`{"op": "constant", "value": "8"}` / `{"op": "variable", "name": "duration_seconds"}`, or a
table `{"op": "lookup", "key": <node>, "values": {"720p": "1", "1080p": "1.67"}}`.

Operators (the 2026-10-10 capture uses all of these except `neq`, `lt` and `not`, which the
same language defines and are supported so a new rule using them still prices):

    constant                 a string ("true"/"false" are booleans); read as a number where
                             one is needed (so `eq(quality, "4k")` compares texts)
    variable                 the value bound to `name` (a missing one is an error naming it)
    lookup                   evaluate `key`, write it as text (an integer as "8", not "8.0"),
                             read `values[text]` (a decimal string); a missing key is an error
    add, multiply            2-32 numbers
    subtract, divide         2 numbers (dividing by zero is an error)
    min, max                 2-32 numbers
    clamp(x, lo, hi)         lo <= hi, else an error
    ceil, floor              1 number, to an integer
    if(cond, a, b)           cond must be a boolean; only the chosen branch is evaluated
    eq, neq                  booleans compare as booleans; numbers (or two decimal-looking
                             strings) numerically; other strings as text
    lt, lte, gt, gte         2 numbers
    and, or                  2-32 booleans, left to right, stopping at the first that decides
    not                      1 boolean

Invariants: arithmetic is on `fractions.Fraction` (no float ever enters); a node is checked
when parsed — an unknown operator, a wrong number of arguments, a variable the model does not
declare, a constant or table entry that is not a decimal, each is a `PricingError` naming it —
so evaluation fails only on the request's values (a missing variable, a key not in a table, a
type mismatch, a division by zero), again naming the variable or operator.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from bot.domain.pricing.errors import PricingError

Value = Fraction | str | bool
"""What a node evaluates to: a number, a text (an enum choice) or a boolean."""

DECIMAL_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)

# op -> (fewest, most) arguments; leaves and lookup take none in `args`.
ARITY: dict[str, tuple[int, int]] = {
    "constant": (0, 0),
    "variable": (0, 0),
    "lookup": (0, 0),
    "add": (2, 32),
    "multiply": (2, 32),
    "subtract": (2, 2),
    "divide": (2, 2),
    "min": (2, 32),
    "max": (2, 32),
    "clamp": (3, 3),
    "ceil": (1, 1),
    "floor": (1, 1),
    "if": (3, 3),
    "eq": (2, 2),
    "neq": (2, 2),
    "lt": (2, 2),
    "lte": (2, 2),
    "gt": (2, 2),
    "gte": (2, 2),
    "and": (2, 32),
    "or": (2, 32),
    "not": (1, 1),
}
OPERATORS = frozenset(ARITY)
MAX_DEPTH = 32


def parse_decimal(text: object, what: str) -> Fraction:
    """A decimal string (or int) as an exact Fraction; anything else is a PricingError."""
    if isinstance(text, int) and not isinstance(text, bool):
        return Fraction(text)
    if not isinstance(text, str) or not DECIMAL_RE.fullmatch(text):
        raise PricingError(f"{what} is {text!r}, not a decimal number.", name=what)
    return Fraction(text)


def key_text(value: Value) -> str:
    """How a lookup key is written: booleans "true"/"false", integers without a point,
    other terminating numbers as plain decimals ("0.5"), anything else as "n/d"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value.denominator == 1:
        return str(value.numerator)
    twos_fives = value.denominator
    for p in (2, 5):
        while twos_fives % p == 0:
            twos_fives //= p
    if twos_fives != 1:
        return f"{value.numerator}/{value.denominator}"
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    digits = str(abs(value.numerator * 10**places // value.denominator)).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


@dataclass(frozen=True)
class Expr:
    """One parsed node. `name` for variables, `value` for constants, `key`/`table` for lookups."""

    op: str
    args: tuple[Expr, ...] = ()
    name: str | None = None
    value: Value | None = None
    key: Expr | None = None
    table: Mapping[str, Fraction] = field(default_factory=dict)

    # -- facts ----------------------------------------------------------------------------

    def walk(self) -> list[Expr]:
        """This node and every node under it (lookup keys included), depth first."""
        nodes = [self]
        for child in (*self.args, *((self.key,) if self.key else ())):
            nodes.extend(child.walk())
        return nodes

    def variable_names(self) -> frozenset[str]:
        """Every variable the node could read."""
        return frozenset(n.name for n in self.walk() if n.op == "variable" and n.name)

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, env: Mapping[str, Value], model_id: str) -> Value:
        """The node's value for the bound variables `env`."""
        op = self.op
        if op == "constant":
            assert self.value is not None
            return self.value
        if op == "variable":
            assert self.name is not None
            if self.name not in env:
                raise PricingError(
                    f"{model_id}: the price needs variable '{self.name}', which was not given.",
                    name=self.name,
                    model_id=model_id,
                )
            return env[self.name]
        if op == "lookup":
            assert self.key is not None
            text = key_text(self.key.evaluate(env, model_id))
            if text not in self.table:
                what = self.key.name if self.key.op == "variable" else "lookup key"
                known = ", ".join(sorted(self.table))
                raise PricingError(
                    f"{model_id}: no price for {what} = {text!r} (the price list has: {known}).",
                    name=what,
                    model_id=model_id,
                )
            return self.table[text]
        if op == "if":
            chosen = 1 if self._boolean(0, env, model_id) else 2
            return self.args[chosen].evaluate(env, model_id)
        if op == "and":
            return all(self._boolean(i, env, model_id) for i in range(len(self.args)))
        if op == "or":
            return any(self._boolean(i, env, model_id) for i in range(len(self.args)))
        if op == "not":
            return not self._boolean(0, env, model_id)
        if op in ("eq", "neq"):
            equal = self._equal(env, model_id)
            return equal if op == "eq" else not equal
        return self._arithmetic(env, model_id)

    def _number(self, i: int, env: Mapping[str, Value], model_id: str) -> Fraction:
        return self._as_number(self.args[i].evaluate(env, model_id), model_id)

    def _as_number(self, value: Value, model_id: str) -> Fraction:
        if isinstance(value, Fraction):
            return value
        if isinstance(value, str) and DECIMAL_RE.fullmatch(value):
            return Fraction(value)
        raise PricingError(
            f"{model_id}: operator '{self.op}' needs a number, got {value!r}.",
            name=self.op,
            model_id=model_id,
        )

    def _boolean(self, i: int, env: Mapping[str, Value], model_id: str) -> bool:
        value = self.args[i].evaluate(env, model_id)
        if not isinstance(value, bool):
            raise PricingError(
                f"{model_id}: operator '{self.op}' needs a boolean, got {value!r}.",
                name=self.op,
                model_id=model_id,
            )
        return value

    def _equal(self, env: Mapping[str, Value], model_id: str) -> bool:
        a, b = (arg.evaluate(env, model_id) for arg in self.args)
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        looks = [isinstance(v, Fraction) or bool(DECIMAL_RE.fullmatch(v)) for v in (a, b)]
        if any(isinstance(v, Fraction) for v in (a, b)) or all(looks):
            return self._as_number(a, model_id) == self._as_number(b, model_id)
        return a == b

    def _arithmetic(self, env: Mapping[str, Value], model_id: str) -> Value:
        op, count = self.op, len(self.args)
        nums = [self._number(i, env, model_id) for i in range(count)]
        if op == "add":
            return sum(nums, Fraction(0))
        if op == "multiply":
            product = Fraction(1)
            for n in nums:
                product *= n
            return product
        if op == "subtract":
            return nums[0] - nums[1]
        if op == "divide":
            if nums[1] == 0:
                raise PricingError(
                    f"{model_id}: the price rule divides by zero.", name=op, model_id=model_id
                )
            return nums[0] / nums[1]
        if op == "min":
            return min(nums)
        if op == "max":
            return max(nums)
        if op == "clamp":
            low, high = nums[1], nums[2]
            if low > high:
                raise PricingError(
                    f"{model_id}: clamp bounds {low} > {high}.", name=op, model_id=model_id
                )
            return min(max(nums[0], low), high)
        if op == "ceil":
            return Fraction(-((-nums[0].numerator) // nums[0].denominator))
        if op == "floor":
            return Fraction(nums[0].numerator // nums[0].denominator)
        if op == "lt":
            return nums[0] < nums[1]
        if op == "lte":
            return nums[0] <= nums[1]
        if op == "gt":
            return nums[0] > nums[1]
        if op == "gte":
            return nums[0] >= nums[1]
        raise PricingError(f"{model_id}: unknown operator '{op}'.", name=op, model_id=model_id)


def parse_expression(raw: object, *, declared: Collection[str], where: str, depth: int = 0) -> Expr:
    """Check and parse one node; `where` (e.g. "sora-2-preview video_output quantity_rule")
    prefixes every message; `declared` are the model's variable names."""
    if depth > MAX_DEPTH:
        raise PricingError(f"{where}: the expression nests deeper than {MAX_DEPTH}.")
    if not isinstance(raw, dict):
        raise PricingError(f"{where}: an expression node must be an object, got {raw!r}.")
    op = raw.get("op")
    if not isinstance(op, str) or op not in OPERATORS:
        raise PricingError(f"{where}: unknown operator {op!r}.", name=str(op))
    raw_args = raw.get("args", [])
    if not isinstance(raw_args, list):
        raise PricingError(f"{where}: '{op}' has args that are not a list.", name=op)
    fewest, most = ARITY[op]
    if not fewest <= len(raw_args) <= most:
        raise PricingError(
            f"{where}: '{op}' takes {fewest}-{most} arguments, got {len(raw_args)}.", name=op
        )
    args = tuple(
        parse_expression(a, declared=declared, where=where, depth=depth + 1) for a in raw_args
    )
    if op == "constant":
        value = raw.get("value")
        if value in ("true", "false"):
            return Expr(op, value=value == "true")
        if isinstance(value, bool):
            return Expr(op, value=value)
        if not isinstance(value, str):
            raise PricingError(f"{where}: constant {value!r} is not a string.", name=op)
        return Expr(op, value=value)  # a number only where one is needed, as the list does
    if op == "variable":
        name = raw.get("name")
        if not isinstance(name, str) or name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise PricingError(
                f"{where}: unknown variable {name!r} (the model declares: {known}).",
                name=str(name),
            )
        return Expr(op, name=name)
    if op == "lookup":
        values = raw.get("values")
        if not isinstance(values, dict) or "key" not in raw:
            raise PricingError(f"{where}: lookup without key or values.", name=op)
        key = parse_expression(raw["key"], declared=declared, where=where, depth=depth + 1)
        table = {
            str(k): parse_decimal(v, f"{where}: lookup entry {k!r}") for k, v in values.items()
        }
        return Expr(op, key=key, table=table)
    return Expr(op, args=args)
