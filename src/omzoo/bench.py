"""The `bench` stage: throughput and latency of one compiled artefact at one batch size (BENCHMARKING.md §3).

Seeded random inputs of the artefact's own dtype and shape; warm-up until both a count and a time are
reached; a timed loop until both a minimum count and a minimum duration are met (capped by max_s).
Two throughputs, each naming its interval:
- throughput_compute_ips = 1000·bs / mean(compute_ms), the ais_bench and ModelZoo-T4 formula;
- throughput_e2e_ips = bs·iters / wall_s, host array in, host logits out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.base import Backend
from omzoo.compile import load_compiled
from omzoo.io import write_json_atomic
from omzoo.params import load_params
from omzoo.provenance import git_revision, nvidia_smi

HELP = "benchmark a compiled model at its batch size: throughput (compute, e2e) and latency percentiles"


@dataclass
class BenchConfig:
    warmup_iters: int = 10
    warmup_s: float = 1.0
    min_iters: int = 100
    min_s: float = 10.0
    max_s: float = 300.0
    seed: int = 0

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> BenchConfig:
        unknown = set(section) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"params.yaml bench: unknown keys {sorted(unknown)}")
        return cls(**section)


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


def latency_stats(ms: np.ndarray) -> dict[str, float]:
    return {"mean": float(ms.mean()), "median": float(np.median(ms)), "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)), "min": float(ms.min()),
            "max": float(ms.max()), "std": float(ms.std()), "count": int(ms.size)}


def _rounded(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj


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
    return _rounded(metrics)


def _gpu_state() -> str:
    """Utilisation and memory in use, recorded before and after a run (BENCHMARKING.md R6 idle check)."""
    return nvidia_smi("name,utilization.gpu,memory.used")


def environment(backend: Backend, meta: dict[str, Any], art_dir: Path, cfg: BenchConfig) -> dict[str, Any]:
    """Provenance strings for the info file (BENCHMARKING.md R6)."""
    from omzoo.checkpoints import file_sha256

    info: dict[str, Any] = {**backend.describe(), "model": meta["model"], "batch_size": meta["batch_size"],
                            "artefact": str(art_dir / meta["artefact"]),
                            "artefact_sha256": file_sha256(art_dir / meta["artefact"]),
                            "input_shape": "x".join(map(str, backend.input_spec()[0])),
                            "input_dtype": str(backend.input_spec()[1]), "seed": cfg.seed,
                            "host": platform.node(), "cpu_count": os.cpu_count(),
                            "loadavg_1m_before": os.getloadavg()[0],
                            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
                            "throughput_compute": "1000*bs/mean(compute_ms)",
                            "throughput_e2e": "bs*iters/sum(e2e_ms)"}
    # What a toolkit comparison needs to trust the numbers (issue "Reports", item 5): the runtime that compiled
    # the artefact, the packages that ran it, the code revision and the precision, whatever the backend reports.
    from importlib import metadata

    versions = []
    for dist in ("onnxruntime", "onnxruntime-gpu", "torch", "onnx", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{dist}={metadata.version(dist)}")
    info.update({"toolkit_version": str(meta.get("toolkit_version", "")), "versions": " ".join(versions),
                 "compiled_from": meta.get("sources", {}), "git_revision": git_revision()})
    gpu = _gpu_state()
    if gpu:
        info["gpu_before"] = gpu
    return info


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True, help="artefact directory from `omzoo compile`")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="provenance JSON (strings)")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig.from_params(load_params(args.params).get("bench") or {})
    backend, meta = load_compiled(args.compiled)
    info = environment(backend, meta, args.compiled, cfg)
    try:
        metrics = benchmark(backend, meta["batch_size"], cfg)
    except Exception as e:  # an OOM at a large batch is a result, not a crash of the sweep
        info["error"] = f"{type(e).__name__}: {e}"
        metrics = {"bs": meta["batch_size"]}
    finally:
        backend.close()
    gpu = _gpu_state()
    if gpu:
        info["gpu_after"] = gpu
    write_json_atomic(args.out, metrics)
    write_json_atomic(args.info, info)
    if "error" in info:
        # recorded, not raised: one OOM at a large batch must not stop the rest of the sweep
        print(f"{meta['model']} bs{meta['batch_size']}: FAILED {info['error']}")
        return 0
    tput = metrics.get("throughput_compute_ips", metrics["throughput_e2e_ips"])
    print(f"{meta['model']} bs{meta['batch_size']}: {tput:.1f} img/s compute, "
          f"{metrics['throughput_e2e_ips']:.1f} img/s e2e, p99 {metrics['e2e_ms']['p99']:.2f} ms "
          f"({metrics['iters']} iters, {metrics['duration_s']:.1f} s)")
    print("RESULT " + json.dumps({"model": meta["model"], **metrics}, sort_keys=True))
    return 0
