"""How omzoo measures speed (docs/benchmarking.md §3, R9): seeded inputs, warm-up, rounds of timed loops.

Seeded random inputs of the artefact's own dtype and shape; one warm-up until both a count and a time are
reached; then R rounds, each a timed loop until both a minimum count and a minimum duration are met (capped by
max_s), each watched for CPU used by other processes and measured again when the machine was busy. Two
throughputs per round, each naming its interval:
- throughput_compute_ips = 1000·bs / mean(compute_ms), the ais_bench and ModelZoo-T4 formula;
- throughput_e2e_ips = bs·iters / wall_s, host array in, host logits out.
The headline is the median over rounds with a distribution-free interval from the rounds' order statistics
(omzoo.timing.stats.median_interval) and the coefficient of variation.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from omzoo.backends.base import Backend
from omzoo.core.metrics import ROUND_METRICS, latency_stats, record
from omzoo.core.onnxgraph import random_input
from omzoo.core.params import BenchConfig
from omzoo.timing.contention import RoundLoad, RoundMonitor
from omzoo.timing.stats import median_interval

INTERVAL = "order statistics of the rounds (binomial, distribution-free): [x(k), x(R+1-k)] around the median"


def warm_up(step: Callable[[], float | None], cfg: BenchConfig) -> int:
    """Run `step` until both `warmup_iters` and `warmup_s` are reached (R2); the number of iterations done."""
    t0, n = time.perf_counter(), 0
    while n < cfg.warmup_iters or time.perf_counter() - t0 < cfg.warmup_s:
        step()
        n += 1
    return n


@dataclass
class Round:
    """One timed loop: per-iteration e2e and compute ms, its wall time, and the CPU others used meanwhile."""

    e2e: np.ndarray
    compute: np.ndarray
    duration_s: float
    capped: int
    load: RoundLoad | None = None
    contended: bool = False
    kept: bool = True

    def values(self, bs: int) -> dict[str, float]:
        """This round's value of every per-round metric (metrics.ROUND_METRICS)."""
        compute = self.compute if self.compute.size else self.e2e
        return {"throughput_compute_ips": 1000.0 * bs / float(compute.mean()),
                "throughput_e2e_ips": bs * self.e2e.size / (float(self.e2e.sum()) / 1e3),
                "e2e_ms.p50": float(np.percentile(self.e2e, 50)), "e2e_ms.p99": float(np.percentile(self.e2e, 99))}


def timed_round(step: Callable[[], float | None], cfg: BenchConfig) -> Round:
    """One timed loop until both `min_iters` and `min_s` are met, or `max_s` (R3); `step` returns compute ms."""
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
    return Round(np.asarray(e2e), np.asarray(compute), elapsed, int(len(e2e) < cfg.min_iters))


def timed_loop(step: Callable[[], float | None], cfg: BenchConfig) -> dict[str, Any]:
    """Warm-up then one timed loop: the single-loop measurement of scripts that sweep many points."""
    warm = warm_up(step, cfg)
    r = timed_round(step, cfg)
    return {"warmup_iters_done": warm, "e2e": r.e2e, "compute": r.compute, "duration_s": r.duration_s,
            "capped": r.capped}


@dataclass
class Measurement:
    """Every round of one benchmark, in the order measured (contended ones that were measured again included)."""

    bs: int
    warmup_iters: int
    rounds: list[Round] = field(default_factory=list)
    device_busy: bool = False

    @property
    def kept(self) -> list[Round]:
        return [r for r in self.rounds if r.kept]


def measure_rounds(step: Callable[[], float | None], bs: int, cfg: BenchConfig,
                   monitor: Callable[[], RoundMonitor] | None = None, device_busy: bool = False,
                   label: str = "") -> Measurement:
    """One warm-up, then `cfg.rounds` rounds, each its own timed loop watched by a RoundMonitor (R9).

    A contended round is measured again, at most `max_retries` times and while the re-measuring has taken less
    than `retry_budget_s`; after that a contended round is kept and flagged, so the result says it is
    untrustworthy instead of passing a busy machine off as a slow toolkit.
    """
    watch = monitor or (lambda: RoundMonitor(threshold=cfg.contention_cores))
    m = Measurement(bs, warm_up(step, cfg), device_busy=device_busy)
    retry_s = 0.0
    with tqdm(total=cfg.rounds, desc=label or f"bench bs{bs}", unit="round", file=sys.stderr,
              disable=None, dynamic_ncols=True) as bar:
        while len(m.kept) < cfg.rounds:
            with watch() as w:
                r = timed_round(step, cfg)
            r.load, r.contended = w.load, w.contended
            retries = len(m.rounds) - len(m.kept)
            if r.contended and retries < cfg.max_retries and retry_s < cfg.retry_budget_s:
                r.kept = False
                retry_s += r.duration_s
                bar.set_postfix_str(f"round contended, measuring again ({retries + 1}/{cfg.max_retries})")
            else:
                bar.update(1)
            m.rounds.append(r)
    return m


def summarise(m: Measurement, level: float = 0.95) -> tuple[dict[str, Any], dict[str, Any]]:
    """The numbers-only bench metrics (medians over kept rounds with their intervals, pooled latency, contention
    counts) and the rounds document (per-round samples, for comparisons)."""
    kept = m.kept
    every = [r.values(m.bs) for r in m.rounds]
    values = [v for r, v in zip(m.rounds, every, strict=True) if r.kept]
    e2e = np.concatenate([r.e2e for r in kept])
    compute = np.concatenate([r.compute for r in kept])
    metrics: dict[str, Any] = {
        "bs": m.bs, "rounds": len(kept), "iters": int(e2e.size), "duration_s": sum(r.duration_s for r in kept),
        "warmup_iters_done": m.warmup_iters, "capped": int(any(r.capped for r in kept)),
        "rounds_contended": sum(r.contended for r in m.rounds), "retries": len(m.rounds) - len(kept),
        "contended": int(any(r.contended for r in kept)), "device_busy": int(m.device_busy),
        "others_cores_max": max((r.load.others_cores for r in kept if r.load), default=0.0),
        "e2e_ms": latency_stats(e2e),
    }
    if compute.size:
        metrics["compute_ms"] = latency_stats(compute)
    for name in ("compute", "e2e"):
        iv = median_interval([v[f"throughput_{name}_ips"] for v in values], level)
        metrics.update({f"throughput_{name}_ips": iv.median, f"throughput_{name}_ci_low": iv.low,
                        f"throughput_{name}_ci_high": iv.high, f"throughput_{name}_cv": iv.cv})
        metrics["ci_coverage"] = iv.coverage
    doc = {"bs": m.bs, "level": level, "interval": INTERVAL,
           "samples": {k: [v[k] for v in values] for k in ROUND_METRICS},
           "rounds": [{**v, "iters": int(r.e2e.size), "duration_s": r.duration_s,
                       "others_cores": r.load.others_cores if r.load else None,
                       "steal_cores": r.load.steal_cores if r.load else None,
                       "contended": int(r.contended), "kept": int(r.kept)} for r, v in zip(m.rounds, every,
                                                                                            strict=True)],
           "contended": metrics["contended"]}
    return record("bench", metrics), doc


def is_out_of_memory(e: BaseException) -> bool:
    """An allocation failure at a large batch (host or device, any runtime): a result of a sweep, not a bug."""
    text = f"{type(e).__name__} {e}".lower()
    return isinstance(e, MemoryError) or "outofmemory" in text or "out of memory" in text or \
        "failed to allocate memory" in text


def benchmark(backend: Backend, batch_size: int, cfg: BenchConfig, label: str = "",
              device_busy: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one loaded artefact (seeded random input of its own dtype and shape): metrics and rounds.
    `device_busy`: another process held the accelerator when the caller looked (recorded, R6)."""
    shape, dtype = backend.input_spec()
    x = random_input(shape, dtype, cfg.seed)
    m = measure_rounds(lambda: backend.step(x), batch_size, cfg, device_busy=device_busy, label=label)
    return summarise(m, cfg.level)
