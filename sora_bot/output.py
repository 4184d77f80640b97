"""What the command line prints for scripts and people: exact JSON and plain tables.

Invariants:
- Credit amounts reach the JSON as `Decimal`s and are written as JSON numbers in the ledger's
  own exact decimal form (``2.5``, ``300``, ``0.001``; never exponent notation, never through a
  float), so `json.loads(text, parse_float=Decimal)` gives back exactly the ledger's figure.
- Everything else goes through the standard `json` module (strings escaped as it escapes them).
- Tables are for people: one header row of the given columns, cells cut at 60 characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from bot.domain.models import fmt_credits, from_uc


def amount(uc: int | None) -> Decimal | None:
    """Milli-credits (the store's unit) → the exact credits to print; None stays None."""
    return None if uc is None else from_uc(uc)


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """`value` as JSON, with every `Decimal` written as an exact number (module docstring)."""
    return _encode(value, indent, 0)


def _encode(value: Any, indent: int | None, depth: int) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return fmt_credits(value)
    if isinstance(value, Mapping):
        items = [
            f"{json.dumps(str(k), ensure_ascii=False)}: {_encode(v, indent, depth + 1)}"
            for k, v in value.items()
        ]
        return _wrap("{", items, "}", indent, depth)
    if isinstance(value, (list, tuple)):
        return _wrap("[", [_encode(v, indent, depth + 1) for v in value], "]", indent, depth)
    if isinstance(value, float):
        raise TypeError("floats are not printed: pass credit amounts as Decimal")
    return json.dumps(value, ensure_ascii=False)


def _wrap(start: str, items: list[str], end: str, indent: int | None, depth: int) -> str:
    if not items:
        return start + end
    if indent is None:
        return start + ", ".join(items) + end
    inner = "\n" + " " * (indent * (depth + 1))
    return start + inner + ("," + inner).join(items) + "\n" + " " * (indent * depth) + end


def cell(value: Any) -> str:
    """A table cell: amounts in plain decimals, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return fmt_credits(value)
    return str(value)


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """A fixed-width table of `columns` (each titled by `headers`, default its own name)."""
    if not rows:
        print("(nothing yet)")
        return
    titles = [(headers or {}).get(c, c) for c in columns]
    table = [[cell(row.get(c))[:60] for c in columns] for row in rows]
    widths = [max(len(t), *(len(r[i]) for r in table)) for i, t in enumerate(titles)]
    print("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip())
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def print_json(value: Any) -> None:
    print(dumps(value))
