"""A strict reader of the Prometheus text exposition format (0.0.4), for the tests.

Stricter than Prometheus itself on purpose: every sample must belong to a family declared by
`# TYPE` before it, label values must be properly quoted and escaped, every value must parse,
and histogram buckets must be cumulative with `+Inf` equal to `_count`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>{LABEL}(?:,{LABEL})*)?\}})? "
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
HELP = re.compile(rf"^# HELP (?P<name>{NAME}) .+$")
TYPE = re.compile(rf"^# TYPE (?P<name>{NAME}) (?P<kind>counter|gauge|histogram|summary|untyped)$")
ONE_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')

Labels = frozenset[tuple[str, str]]


@dataclass
class Exposition:
    types: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def series(self, name: str) -> dict[Labels, float]:
        return {labels: v for (n, labels), v in self.samples.items() if n == name}


def _family(name: str, types: dict[str, str]) -> str:
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    raise AssertionError(f"sample {name!r} has no # TYPE before it")


def parse(text: str) -> Exposition:
    assert text.endswith("\n"), "the exposition must end with a newline"
    out = Exposition()
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            assert HELP.match(line), f"line {number}: bad HELP: {line!r}"
            continue
        if line.startswith("# TYPE "):
            match = TYPE.match(line)
            assert match, f"line {number}: bad TYPE: {line!r}"
            assert match["name"] not in out.types, f"line {number}: family declared twice"
            out.types[match["name"]] = match["kind"]
            continue
        match = SAMPLE.match(line)
        assert match, f"line {number}: not a valid sample: {line!r}"
        _family(match["name"], out.types)
        labels: Labels = frozenset(ONE_LABEL.findall(match["labels"] or ""))
        key = (match["name"], labels)
        assert key not in out.samples, f"line {number}: duplicate series {key}"
        out.samples[key] = float(match["value"].replace("Inf", "inf"))
    _check_histograms(out)
    return out


def _check_histograms(out: Exposition) -> None:
    for family, kind in out.types.items():
        if kind != "histogram":
            continue
        groups: dict[Labels, list[tuple[float, float]]] = {}
        for labels, value in out.series(f"{family}_bucket").items():
            le = dict(labels)["le"]
            rest = frozenset(p for p in labels if p[0] != "le")
            groups.setdefault(rest, []).append((float(le.replace("Inf", "inf")), value))
        for rest, buckets in groups.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), f"{family}{dict(rest)}: buckets not cumulative"
            assert math.isinf(buckets[-1][0]), f"{family}{dict(rest)}: no +Inf bucket"
            assert out.samples[(f"{family}_count", rest)] == counts[-1]
            assert (f"{family}_sum", rest) in out.samples
