"""How omzoo measures: the timed loop's count-and-duration rule, seeded inputs, and a real benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omzoo.backends.artefact import load_compiled
from omzoo.measure import BenchConfig, benchmark, random_input, timed_loop


def test_timed_loop_meets_count_and_duration() -> None:
    calls = []
    r = timed_loop(lambda: calls.append(1) or 1.0, BenchConfig(warmup_iters=3, warmup_s=0.0, min_iters=7,
                                                                min_s=0.05, max_s=5.0))
    assert r["warmup_iters_done"] >= 3 and r["e2e"].size >= 7 and r["duration_s"] >= 0.05 and r["capped"] == 0
    assert len(calls) == r["warmup_iters_done"] + r["e2e"].size


def test_timed_loop_cap_is_flagged() -> None:
    r = timed_loop(lambda: None, BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=10**9, min_s=0.0, max_s=0.02))
    assert r["capped"] == 1 and r["compute"].size == 0


def test_random_input_is_seeded_and_never_zero() -> None:
    a = random_input((2, 3, 4, 4), np.dtype(np.uint8), 0)
    assert a.dtype == np.uint8 and a.any()
    np.testing.assert_array_equal(a, random_input((2, 3, 4, 4), np.dtype(np.uint8), 0))
    assert random_input((2, 3), np.dtype(np.float32), 1).dtype == np.float32


def test_bench_on_a_compiled_artefact(compiled: Path) -> None:
    backend, _ = load_compiled(compiled / "c4")
    m = benchmark(backend, 4, BenchConfig(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, max_s=10.0))
    assert m["iters"] >= 3 and m["throughput_compute_ips"] > 0
    assert m["throughput_compute_ips"] == pytest.approx(4000 / m["compute_ms"]["mean"], rel=1e-3)
    meta = json.loads((compiled / "c4" / "meta.json").read_text())
    assert meta["toolkit_version"] and str(compiled / "m.onnx") in meta["sources"]
