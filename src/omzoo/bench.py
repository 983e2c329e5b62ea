"""The `bench` stage: throughput and latency of one compiled artefact at one batch size (BENCHMARKING.md §3).

How it measures lives in omzoo.measure; this stage opens the artefact, runs it, and writes the numbers-only
metrics file and the provenance info file (strings: backend description, artefact hash, host, git revision).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from omzoo.backends.artefact import load_compiled
from omzoo.backends.base import Backend
from omzoo.io import sha256_file, write_json_atomic
from omzoo.measure import BenchConfig, benchmark
from omzoo.params import PARAMS_HELP, load_params
from omzoo.provenance import git_revision, nvidia_smi

HELP = "benchmark a compiled model at its batch size: throughput (compute, e2e) and latency percentiles"


def environment(backend: Backend, meta: dict[str, Any], art_dir: Path, cfg: BenchConfig) -> dict[str, Any]:
    """Provenance strings for the info file (BENCHMARKING.md R6); backend specifics come from describe()."""
    artefact = art_dir / meta["artefact"]
    shape, dtype = backend.input_spec()
    info: dict[str, Any] = {**backend.describe(), "model": meta["model"], "batch_size": meta["batch_size"],
                            "artefact": str(artefact), "artefact_sha256": sha256_file(artefact),
                            "input_shape": "x".join(map(str, shape)), "input_dtype": str(dtype), "seed": cfg.seed,
                            "host": platform.node(), "cpu_count": os.cpu_count(),
                            "loadavg_1m_before": os.getloadavg()[0],
                            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
                            "throughput_compute": "1000*bs/mean(compute_ms)",
                            "throughput_e2e": "bs*iters/sum(e2e_ms)",
                            "toolkit_version": str(meta.get("toolkit_version", "")),
                            "compiled_from": meta.get("sources", {}), "git_revision": git_revision()}
    gpu = nvidia_smi("name,utilization.gpu,memory.used")
    if gpu:
        info["gpu_before"] = gpu
    return info


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True, help="artefact directory from `omzoo compile`")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="provenance JSON (strings)")
    p.add_argument("--params", type=Path, help=PARAMS_HELP)


def run(args: argparse.Namespace) -> int:
    cfg = load_params(args.params).typed(BenchConfig, "bench")
    backend, meta = load_compiled(args.compiled)
    try:
        info = environment(backend, meta, args.compiled, cfg)
        metrics = benchmark(backend, meta["batch_size"], cfg)
    finally:
        backend.close()
    gpu = nvidia_smi("name,utilization.gpu,memory.used")
    if gpu:
        info["gpu_after"] = gpu
    write_json_atomic(args.out, metrics)
    write_json_atomic(args.info, info)
    tput = metrics.get("throughput_compute_ips", metrics["throughput_e2e_ips"])
    print(f"{meta['model']} bs{meta['batch_size']}: {tput:.1f} img/s compute, "
          f"{metrics['throughput_e2e_ips']:.1f} img/s e2e, p99 {metrics['e2e_ms']['p99']:.2f} ms "
          f"({metrics['iters']} iters, {metrics['duration_s']:.1f} s)")
    print("RESULT " + json.dumps({"model": meta["model"], **metrics}, sort_keys=True))
    return 0
