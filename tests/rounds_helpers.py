"""Benchmark rounds built by hand, for the speed-verdict tests (omzoo.results.verdicts and what consumes them)."""

from __future__ import annotations

import numpy as np

from omzoo.results.rules import TIMED, CompareConfig
from omzoo.results.verdicts import Judged, Side, judge


def side(speed: float = 1.0, seed: int = 0, rounds: int = 5, contended: bool = False, spread: float = 0.02) -> Side:
    """Rounds of a point at `speed` × 100 img/s with seeded noise; latencies follow (lower is better)."""
    tput = 100.0 * speed * (1 + spread * np.random.default_rng(seed).standard_normal(rounds))
    return Side({}, {m.name: (tput if m.better == "higher" else 1000.0 / tput).tolist() for m in TIMED}, contended)


DEFAULT = CompareConfig()


def judged(base: Side, head: Side, cfg: CompareConfig = DEFAULT) -> list[Judged]:
    """Every per-round metric of one point (m, bs 8), judged."""
    return [judge("m", 8, m, base, head, cfg) for m in TIMED]
