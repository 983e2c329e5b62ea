"""How omzoo measures: the timed loop's count-and-duration rule, seeded inputs, and a real benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo.backends.artefact import load_compiled
from omzoo.core.metrics import ROUND_METRICS
from omzoo.timing.contention import RoundLoad
from omzoo.timing.measure import (
    BenchConfig,
    benchmark,
    is_out_of_memory,
    measure_rounds,
    summarise,
    timed_loop,
)

FAST = BenchConfig(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, max_s=10.0)


class _Monitor:
    """A RoundMonitor stand-in that reports the next of a scripted list of loads: contention as pure input."""

    def __init__(self, script: list[float]) -> None:
        self.script = script

    def __call__(self):
        others = self.script.pop(0)
        self.load = RoundLoad(wall_s=1.0, cores=2, own_cores=1.0, others_cores=others, steal_cores=0.0)
        self.contended = others > 0.1
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def test_timed_loop_meets_count_and_duration() -> None:
    calls = []
    r = timed_loop(lambda: calls.append(1) or 1.0, BenchConfig(warmup_iters=3, warmup_s=0.0, min_iters=7,
                                                                min_s=0.05, max_s=5.0))
    assert r["warmup_iters_done"] >= 3 and r["e2e"].size >= 7 and r["duration_s"] >= 0.05 and r["capped"] == 0
    assert len(calls) == r["warmup_iters_done"] + r["e2e"].size


def test_timed_loop_cap_is_flagged() -> None:
    r = timed_loop(lambda: None, BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=10**9, min_s=0.0, max_s=0.02))
    assert r["capped"] == 1 and r["compute"].size == 0


def test_bench_on_a_compiled_artefact(compiled: Path) -> None:
    backend, _ = load_compiled(compiled / "c4")
    m, rounds = benchmark(backend, 4, FAST)
    assert m["rounds"] == 10 and m["iters"] >= 30 and m["throughput_compute_ips"] > 0
    samples = rounds["samples"]["throughput_compute_ips"]
    assert len(samples) == 10 and m["throughput_compute_ips"] == pytest.approx(float(np.median(samples)), rel=1e-6)
    assert m["throughput_compute_ci_low"] == pytest.approx(sorted(samples)[1]) and m["ci_coverage"] > 0.97
    assert m["throughput_compute_ci_low"] <= m["throughput_compute_ips"] <= m["throughput_compute_ci_high"]
    assert set(rounds["samples"]) == set(ROUND_METRICS) and len(rounds["rounds"]) == 10 + m["retries"]


def test_contended_rounds_are_measured_again_within_the_bounds() -> None:
    cfg = BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=2, min_s=0.0, max_s=1.0, rounds=3, max_retries=2)
    m = measure_rounds(lambda: 1.0, 4, cfg, monitor=_Monitor([0.0, 0.8, 0.0, 0.9, 0.0]))
    assert [r.kept for r in m.rounds] == [True, False, True, False, True]
    metrics, doc = summarise(m)
    assert metrics["rounds"] == 3 and metrics["retries"] == 2 and metrics["rounds_contended"] == 2
    assert metrics["contended"] == 0 and len(doc["rounds"]) == 5 and doc["contended"] == 0


def test_a_round_that_stays_contended_marks_the_result() -> None:
    cfg = BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=2, min_s=0.0, max_s=1.0, rounds=3, max_retries=1)
    m = measure_rounds(lambda: 1.0, 4, cfg, monitor=_Monitor([0.5, 0.5, 0.5, 0.0]))
    metrics, doc = summarise(m)
    assert metrics["retries"] == 1 and metrics["rounds"] == 3 and metrics["contended"] == 1
    assert metrics["rounds_contended"] == 3 and metrics["others_cores_max"] == 0.5 and doc["contended"] == 1


def test_the_retry_budget_bounds_the_seconds_spent() -> None:
    cfg = BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=1, min_s=0.0, max_s=1.0, rounds=2, max_retries=50,
                      retry_budget_s=1e-9)
    m = measure_rounds(lambda: 1.0, 1, cfg, monitor=_Monitor([0.5, 0.5, 0.5]))
    assert len(m.rounds) == 3 and sum(not r.kept for r in m.rounds) == 1  # one retry spent the whole budget


@pytest.mark.parametrize(("error", "oom"), [
    (MemoryError(), True), (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), True),
    (RuntimeError("Failed to allocate memory for requested buffer of size 123"), True),
    (ValueError("bad input shape"), False), (TypeError("'>=' not supported"), False),
])
def test_only_out_of_memory_is_a_result(error: Exception, oom: bool) -> None:
    assert is_out_of_memory(error) is oom
