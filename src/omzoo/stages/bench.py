"""The `bench` stage: throughput and latency of one compiled artefact at one batch size (README, Benchmarks).

How it measures lives in omzoo.timing.measure (rounds, contention, intervals); this stage opens the artefact, runs it,
and writes three files: the numbers-only metrics (medians, intervals, contention counts), the rounds (per-round
samples, which comparisons read), and the provenance info (strings). They are written only after the whole
measurement succeeded. An out-of-memory at a large batch is recorded as a result (`failed: 1`, the error in the
info file) so a sweep goes on; any other error fails the stage and leaves the previous files as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from omzoo.backends.artefact import load_compiled
from omzoo.backends.base import Backend, DeviceProcess
from omzoo.core.io import json_bytes, sha256_file, write_files_atomic
from omzoo.core.metrics import record
from omzoo.core.params import BenchConfig, load_params
from omzoo.core.provenance import FINGERPRINT, git_revision
from omzoo.timing.contention import other_processes
from omzoo.timing.measure import INTERVAL, benchmark, is_out_of_memory

HELP = "benchmark a compiled model at its batch size: R rounds, medians with intervals, contention detected"


def environment(backend: Backend, meta: dict[str, Any], art_dir: Path, cfg: BenchConfig,
                others: list[DeviceProcess]) -> dict[str, Any]:
    """Provenance strings for the info file; backend specifics come from describe() and, on an accelerator, from
    device_state(), and `others` are the processes found on the accelerator before the run."""
    artefact = art_dir / meta["artefact"]
    shape, dtype = backend.input_spec()
    info: dict[str, Any] = {**backend.describe(), "model": meta["model"], "batch_size": meta["batch_size"],
                            "artefact": str(artefact), "artefact_sha256": sha256_file(artefact),
                            "input_shape": "x".join(map(str, shape)), "input_dtype": str(dtype), "seed": cfg.seed,
                            "host": platform.node(), "cpu_count": os.cpu_count(),
                            "loadavg_1m_before": os.getloadavg()[0],
                            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
                            "throughput_compute": "1000*bs/mean(compute_ms), median over rounds",
                            "throughput_e2e": "bs*iters/sum(e2e_ms), median over rounds", "interval": INTERVAL,
                            "contention": f"a round is contended when other processes used more than "
                                          f"{cfg.contention_cores} cores of CPU while it ran (/proc/stat)",
                            "toolkit_version": str(meta.get("toolkit_version", "")),
                            "compiled_from": meta.get("sources", {}), "git_revision": git_revision()}
    if backend.accelerator():
        info["device_processes"] = "; ".join(f"{p.device} pid {p.pid} {p.name}".strip() for p in others) or "none"
        info.update(backend.device_state())
    return info


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True, help="artefact directory from `omzoo compile`")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="provenance JSON (strings)")
    p.add_argument("--rounds", type=Path, required=True, help="per-round samples JSON (read by `omzoo compare`)")
    p.add_argument("--toolkit", type=Path, help="the toolkit stage's file (metrics/toolkit.json): must name this "
                   "host's toolkit; its hash goes into the info file")


def run(args: argparse.Namespace) -> int:
    cfg = load_params(args.params).typed(BenchConfig, "bench")
    backend, meta = load_compiled(args.compiled)
    label = f"bench {meta['model']} bs{meta['batch_size']}"
    try:
        others = other_processes(backend.device_processes())  # [] where there is no device
        info = environment(backend, meta, args.compiled, cfg, others)
        info[FINGERPRINT] = backend.checked_fingerprint(args.toolkit)
        try:
            metrics, rounds = benchmark(backend, meta["batch_size"], cfg, label, device_busy=bool(others))
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            info["error"] = f"{type(e).__name__}: {e}"  # a result of the sweep, not a crash of it
            metrics, rounds = record("bench", {"bs": meta["batch_size"], "failed": 1}), {"failed": 1}
    finally:
        backend.close()
    write_files_atomic({args.rounds: json_bytes({"model": meta["model"], **rounds}), args.info: json_bytes(info),
                        args.out: json_bytes(metrics)})  # one commit: never new rounds beside old metrics
    if metrics.get("failed"):
        print(f"{label}: out of memory, recorded as failed: {info['error']}", file=sys.stderr)
        return 0
    flag = "  CONTENDED: other processes used the CPU; do not compare" if metrics["contended"] else ""
    print(f"{label}: {metrics['throughput_compute_ips']:.1f} img/s compute "
          f"[{metrics['throughput_compute_ci_low']:.1f}, {metrics['throughput_compute_ci_high']:.1f}] "
          f"({100 * metrics['ci_coverage']:.1f} % interval, cv {metrics['throughput_compute_cv']:.3f}, "
          f"{metrics['rounds']} rounds, {metrics['retries']} measured again){flag}")
    print("RESULT " + json.dumps({"model": meta["model"], **metrics}, sort_keys=True))
    return 0
