"""Results built by hand for the tests of omzoo.results: benchmark rounds and their speed verdicts
(omzoo.results.verdicts and what consumes them), a bench metrics file, a compared top-1."""

from __future__ import annotations

import numpy as np

from omzoo.core import paths
from omzoo.results.accuracy import Accuracy
from omzoo.results.rules import TIMED, CompareConfig
from omzoo.results.verdicts import Judged, Side, judge


def side(speed: float = 1.0, seed: int = 0, rounds: int = 5, contended: bool = False, spread: float = 0.02,
         host: dict[str, str] | None = None) -> Side:
    """Rounds of a point at `speed` × 100 img/s with seeded noise; latencies follow (lower is better). The metrics
    file holds each metric's median round, as bench writes it; `host` is what its info file names."""
    tput = 100.0 * speed * (1 + spread * np.random.default_rng(seed).standard_normal(rounds))
    samples = {m.name: (tput if m.better == "higher" else 1000.0 / tput).tolist() for m in TIMED}
    return Side({n: float(np.median(v)) for n, v in samples.items()}, samples, contended,
                host=host or {"device": "cpu", "cpu_count": "2"}, where=f"m:{paths.bench_metrics('m', 8)}",
                rounds_where=f"m:{paths.bench_rounds('m', 8)}")


DEFAULT = CompareConfig()


def judged(base: Side, head: Side, cfg: CompareConfig = DEFAULT) -> list[Judged]:
    """Every per-round metric of one point (m, bs 8), judged."""
    return [judge("m", 8, m, base, head, cfg) for m in TIMED]


def bench_metrics(ips: float, contended: int = 0) -> dict:
    """A bench metrics file at bs 8: `ips` img/s compute with the interval [ips - 2, ips + 3], e2e 1 img/s slower
    with no interval, latencies."""
    return {"bs": 8, "throughput_compute_ips": ips, "throughput_compute_ci_low": ips - 2.0,
            "throughput_compute_ci_high": ips + 3.0, "throughput_compute_cv": 0.012, "throughput_e2e_ips": ips - 1,
            "contended": contended, "e2e_ms": {"p50": 1.0, "p99": 2.0}}


def top1(old: float | None, new: float | None, status: str = "changed", model: str = "m") -> Accuracy:
    """A model's compared accuracy where only top-1 is known."""
    return Accuracy(model, status, topk={"top1": {"old": old, "new": new}})
