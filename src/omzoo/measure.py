"""How omzoo measures speed (BENCHMARKING.md §3): seeded inputs, warm-up, timed loops, the bench metrics.

Seeded random inputs of the artefact's own dtype and shape; warm-up until both a count and a time are
reached; a timed loop until both a minimum count and a minimum duration are met (capped by max_s).
Two throughputs, each naming its interval:
- throughput_compute_ips = 1000·bs / mean(compute_ms), the ais_bench and ModelZoo-T4 formula;
- throughput_e2e_ips = bs·iters / wall_s, host array in, host logits out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from omzoo.backends.base import Backend
from omzoo.metrics import latency_stats, record


@dataclass(frozen=True)
class BenchConfig:
    """params.yaml `bench:` (read with Params.typed, so a misspelt key or a quoted number fails by name)."""

    warmup_iters: int = 10
    warmup_s: float = 1.0
    min_iters: int = 100
    min_s: float = 10.0
    max_s: float = 300.0
    seed: int = 0


def random_input(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    """Seeded, never zeros: standard normal for float inputs, uniform 0..255 for uint8 pixels."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def timed_loop(step, cfg: BenchConfig) -> dict[str, Any]:
    """Warm up, then time `step()` (which returns compute ms) per iteration; raw series and counters."""
    t0, warm = time.perf_counter(), 0
    while warm < cfg.warmup_iters or time.perf_counter() - t0 < cfg.warmup_s:
        step()
        warm += 1
    e2e: list[float] = []
    compute: list[float] = []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        c = step()
        e2e.append((time.perf_counter() - t) * 1e3)
        if c is not None:
            compute.append(c)
        elapsed = time.perf_counter() - start
        if (len(e2e) >= cfg.min_iters and elapsed >= cfg.min_s) or elapsed >= cfg.max_s:
            break
    return {"warmup_iters_done": warm, "e2e": np.asarray(e2e), "compute": np.asarray(compute),
            "duration_s": elapsed, "capped": int(len(e2e) < cfg.min_iters)}


def benchmark(backend: Backend, batch_size: int, cfg: BenchConfig) -> dict[str, Any]:
    """The numbers-only metrics dict for one (artefact, batch size)."""
    shape, dtype = backend.input_spec()
    x = random_input(shape, dtype, cfg.seed)
    r = timed_loop(lambda: backend.step(x), cfg)
    e2e, compute = r["e2e"], r["compute"]
    metrics: dict[str, Any] = {
        "bs": batch_size, "iters": int(e2e.size), "duration_s": r["duration_s"],
        "warmup_iters_done": r["warmup_iters_done"], "capped": r["capped"],
        "throughput_e2e_ips": batch_size * e2e.size / (e2e.sum() / 1e3),
        "e2e_ms": latency_stats(e2e),
    }
    if compute.size:
        metrics["throughput_compute_ips"] = 1000.0 * batch_size / compute.mean()
        metrics["compute_ms"] = latency_stats(compute)
    return record("bench", metrics)
