"""Speed verdicts: for every (model, bs) and every metric measured per round, HEAD/BASE of the medians of the
kept rounds (metrics/rounds/, committed) with a distribution-free interval, judged by omzoo.timing.stats.verdict.

A raw delta cannot tell a busy CPU from a slower toolkit; the rounds can. A side that is contended, failed, or has
too few rounds is inconclusive, never regressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omzoo.core import metrics, paths
from omzoo.core.metrics import Metric, number
from omzoo.results import revisions
from omzoo.results.rules import LEVEL, TIMED, CompareConfig
from omzoo.timing import stats

OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive")  # the order of the summary and the tables


@dataclass(frozen=True)
class Side:
    """One revision's benchmark of one (model, bs): the metrics file (flattened), the kept rounds per metric, and
    why the side cannot be judged at all ("" when it can)."""

    headline: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    contended: bool = False
    missing: str = ""


def read_side(rev: str, model: str, bs: int) -> Side:
    """A revision's bench metrics and rounds files, from git; a missing or failed run is a reason, not an error."""
    found = revisions.read_json(rev, str(paths.bench_metrics(model, bs)))
    if not isinstance(found, dict):
        return Side(missing="not measured")
    headline = metrics.flatten(found)
    if headline.get(metrics.FAILED):
        return Side(headline, missing="failed (out of memory)")
    rounds_path = paths.bench_rounds(model, bs)
    rounds = revisions.read_json(rev, str(rounds_path))
    if not isinstance(rounds, dict) or not isinstance(rounds.get("samples"), dict):
        return Side(headline, missing=f"has no rounds ({rounds_path}: measured before rounds were kept?)")
    contended = bool(headline.get(metrics.CONTENDED) or rounds.get(metrics.CONTENDED))
    return Side(headline, dict(rounds["samples"]), contended)


@dataclass(frozen=True)
class Judged:
    """One compared speed number: old and new are the medians of the kept rounds (the metrics file's value where
    a side has none), ratio = new/old with its interval and that interval's guaranteed coverage. `reason` is
    stats.verdict's; `finding` the same without the interval's numbers ("" where the reason names none)."""

    model: str
    bs: int
    metric: str
    unit: str
    better: str
    old: float | None
    new: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    coverage: float | None
    p_value: float | None  # exact Mann-Whitney, reported, not used by the rule
    verdict: str
    reason: str
    finding: str = ""

    @property
    def why(self) -> str:
        """The reason, short, for a table whose own columns show the ratio and its interval."""
        return self.finding or self.reason


def judge(model: str, bs: int, metric: Metric, base: Side, head: Side, cfg: CompareConfig) -> Judged:
    """stats.verdict on the two sides' rounds; a side without usable rounds is inconclusive, never regressed."""
    old, new = number(base.headline.get(metric.name)), number(head.headline.get(metric.name))
    missing = [f"{name} {s.missing or f'has no rounds of {metric.name}'}"
               for name, s in (("base", base), ("head", head)) if s.missing or not s.samples.get(metric.name)]
    if missing:
        return Judged(model, bs, metric.name, metric.unit, metric.better, old, new, None, None, None, None, None,
                      "inconclusive", "; ".join(missing))
    try:
        v = stats.verdict(base.samples[metric.name], head.samples[metric.name], metric.better,
                          min_effect=cfg.min_effect, min_rounds=cfg.min_rounds, base_contended=base.contended,
                          head_contended=head.contended, level=LEVEL)
    except (ValueError, TypeError) as e:  # rounds that are no positive numbers: a broken file, not a verdict
        return Judged(model, bs, metric.name, metric.unit, metric.better, old, new, None, None, None, None, None,
                      "inconclusive", f"unusable rounds: {e}")
    r = v.ratio
    assert r is not None  # both sides have rounds
    return Judged(model, bs, metric.name, metric.unit, metric.better, r.base.median, r.head.median, r.ratio, r.low,
                  r.high, r.coverage, v.p_value, v.outcome, v.reason, v.finding)


def verdicts(base: str, head: str, keys: list[tuple[str, int]], cfg: CompareConfig) -> list[Judged]:
    """Every (model, bs) × per-round metric, in key order."""
    out: list[Judged] = []
    for model, bs in keys:
        b, h = read_side(base, model, bs), read_side(head, model, bs)
        out += [judge(model, bs, m, b, h, cfg) for m in TIMED]
    return out
