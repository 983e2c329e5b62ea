"""Do benchmarks hold on a busy machine? The same commit measured three ways, side by side, in one run.

RAN-92 and TResNet-M (seeded random weights, uint8 ONNX, ONNX Runtime CPU) at batch sizes 1 and 8, each
measured exactly as the bench stage measures (omzoo.timing.measure: warm-up, R rounds, contention detection and
re-measuring, median with its order-statistic interval):
- quiet:    the branch's settings (onnxruntime.threads 0 = one per core) on a quiet machine;
- load:     the same, with two busy processes (started and ended by this script) during part of the run;
- threads1: `onnxruntime.threads: 1` on a quiet machine.
Targets: the load run is never reported as slower (its interval overlaps the quiet one, or it is marked
contended); the threads1 interval is separated from the quiet one wherever the two medians differ by more
than 10 %. With `--compare`, the three runs are committed as three revisions of a scratch repository and
read back through `omzoo compare` (verdicts: load vs quiet must not be `regressed`; threads1 vs quiet must be
`regressed` where its median is more than 10 % lower).

    .venv/bin/python benchmarks/bench_stability.py [--dir CACHE] [--rounds 10] [--min-s 1.0] [--compare]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from tabulate import tabulate

from omzoo.backends.artefact import compile_artefact, load_compiled
from omzoo.core import paths, zoo
from omzoo.core.io import write_json_atomic
from omzoo.core.model import load_model, random_checkpoint
from omzoo.stages.export import export_onnx
from omzoo.timing.measure import BenchConfig, benchmark

MODELS = ("ran92_cifar10", "tresnet_m")
SIZES = (1, 8)
RUNS = {"quiet": {}, "load": {}, "threads1": {"threads": 1}}


class CompetingLoad:
    """Two processes spinning on the CPU from `start_after` seconds for `duration` seconds (then killed)."""

    def __init__(self, start_after: float, duration: float) -> None:
        self.start_after, self.duration = start_after, duration
        self.procs: list[subprocess.Popen] = []
        self._timer = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()

    def _run(self) -> None:
        if self._stop.wait(self.start_after):
            return
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        self._stop.wait(self.duration)
        self._end()

    def _end(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []

    def __enter__(self) -> CompetingLoad:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._timer.join()
        self._end()


def build(work: Path, model: str, bs: int) -> Path:
    """Random weights → uint8 ONNX → ORT artefact at `bs` (cached in `work`)."""
    spec = zoo.get(model)
    art = work / paths.key(model, bs)
    if (art / "meta.json").is_file():
        return art
    ckpt, onnx = work / f"{model}.pth", work / f"{model}.onnx"
    if not onnx.is_file():
        random_checkpoint(spec, ckpt)
        export_onnx(load_model(spec, ckpt), spec, onnx, input_dtype="uint8")
    compile_artefact(spec, bs, art, "onnxruntime", {}, onnx=onnx)
    return art


def measure(art: Path, options: dict, cfg: BenchConfig, label: str, load: bool) -> tuple[dict, dict]:
    backend, meta = load_compiled(art, {"threads": 0, **options})
    try:
        if not load:
            return benchmark(backend, meta["batch_size"], cfg, label)
        # Load for about half of the quiet measuring time, starting after the warm-up and the first round.
        per_round = max(cfg.min_s, 0.2)
        with CompetingLoad(start_after=cfg.warmup_s + per_round, duration=cfg.rounds * per_round / 2):
            return benchmark(backend, meta["batch_size"], cfg, label)
    finally:
        backend.close()


def interval(m: dict) -> str:
    flag = " CONTENDED" if m["contended"] else ""
    return (f"{m['throughput_compute_ips']:.1f} [{m['throughput_compute_ci_low']:.1f}, "
            f"{m['throughput_compute_ci_high']:.1f}] r{m['retries']}{flag}")


def overlaps(a: dict, b: dict) -> bool:
    return a["throughput_compute_ci_low"] <= b["throughput_compute_ci_high"] and \
        b["throughput_compute_ci_low"] <= a["throughput_compute_ci_high"]


def commit_revisions(repo: Path, results: dict[str, dict[tuple[str, int], tuple[dict, dict]]]) -> None:
    """A scratch git+DVC repository with one branch per run, holding params.yaml (these models and sizes) and
    the metrics and rounds files at the pipeline's paths: what `omzoo compare` reads from a toolkit branch."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    repo.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "quiet")
    git("config", "user.email", "bench@omzoo.invalid")
    git("config", "user.name", "omzoo bench")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics: [metrics/bench]\n")
    params = yaml.safe_load(paths.PARAMS.read_text())
    params.update(models={m: params["models"][m] for m in MODELS}, batch_sizes=list(SIZES))
    params["infer"]["batch_size"] = SIZES[-1]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for i, (run, points) in enumerate(results.items()):
        if i:
            git("checkout", "-q", "-B", run, "quiet")
        for (model, bs), (metrics, rounds) in points.items():
            write_json_atomic(repo / paths.bench_metrics(model, bs), metrics)
            write_json_atomic(repo / paths.bench_rounds(model, bs), {"model": model, **rounds})
        git("add", "-A")
        git("commit", "-qm", f"bench: {run}")


def compare_runs(work: Path, results: dict[str, dict[tuple[str, int], tuple[dict, dict]]]) -> list[bool]:
    """`omzoo compare quiet load` and `quiet threads1` on the scratch repository; the verdicts per point, and
    whether each meets its target (load: never regressed; threads1: regressed where it is > 10 % slower)."""
    repo = work / "revisions"
    shutil.rmtree(repo, ignore_errors=True)
    commit_revisions(repo, results)
    verdict: dict[tuple[str, str, int], str] = {}
    for head in ("load", "threads1"):
        out = work / f"compare-{head}"
        r = subprocess.run([sys.executable, "-m", "omzoo.cli", "compare", "quiet", head, "--no-plots", "--out",
                            str(out)], cwd=repo, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"omzoo compare quiet {head} failed:\n{r.stderr}")
        data = json.loads((out / "compare.json").read_text())
        print(f"\n$ omzoo compare quiet {head}\n{data['summary']}")
        for row in data["verdicts"]:
            if row["metric"] == "throughput_compute_ips":
                verdict[(head, row["model"], row["bs"])] = row["verdict"]
    rows, met = [], []
    for model in MODELS:
        for bs in SIZES:
            q, t1 = results["quiet"][(model, bs)][0], results["threads1"][(model, bs)][0]
            change = t1["throughput_compute_ips"] / q["throughput_compute_ips"] - 1
            load_v, t1_v = verdict[("load", model, bs)], verdict[("threads1", model, bs)]
            ok = [load_v != "regressed", change >= -0.10 or t1_v == "regressed"]
            met += ok
            rows.append([model, bs, load_v, t1_v, f"{100 * change:+.1f} %",
                         "yes" if all(ok) else "NO"])
    print(tabulate(rows, ["model", "bs", "compare quiet→load", "compare quiet→threads1", "threads1 vs quiet",
                          "targets met"], tablefmt="github", disable_numparse=True))
    return met


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", type=Path, default=Path(".cache/bench-stability"), help="artefact cache")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--min-s", type=float, default=1.0, help="seconds per round")
    p.add_argument("--compare", action="store_true", help="also read the three runs through `omzoo compare`")
    args = p.parse_args()
    cfg = BenchConfig(warmup_iters=5, warmup_s=0.5, min_iters=5, min_s=args.min_s, max_s=60.0, rounds=args.rounds)
    args.dir = args.dir.resolve()
    args.dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[tuple[str, int], tuple[dict, dict]]] = {run: {} for run in RUNS}
    started = time.perf_counter()
    for model in MODELS:
        for bs in SIZES:
            art = build(args.dir, model, bs)
            for run, options in RUNS.items():
                results[run][(model, bs)] = measure(art, options, cfg, f"{run} {model} bs{bs}", run == "load")
    rows, met = [], []
    for model in MODELS:
        for bs in SIZES:
            q, ld, t1 = (results[run][(model, bs)][0] for run in RUNS)
            load_ok = overlaps(q, ld) or bool(ld["contended"]) or \
                ld["throughput_compute_ci_low"] > q["throughput_compute_ci_high"]
            differ = abs(t1["throughput_compute_ips"] / q["throughput_compute_ips"] - 1) > 0.10
            t1_ok = not differ or not overlaps(q, t1)
            met += [load_ok, t1_ok]
            rows.append([model, bs, interval(q), interval(ld), "yes" if load_ok else "NO", interval(t1),
                         f"{100 * (t1['throughput_compute_ips'] / q['throughput_compute_ips'] - 1):+.1f} %",
                         ("separated" if not overlaps(q, t1) else "overlap") + ("" if t1_ok else " NOT MET")])
    coverage = min(m[0]["ci_coverage"] for r in results.values() for m in r.values())
    print(f"\nthroughput_compute_ips: median of {cfg.rounds} rounds [interval, >= {100 * coverage:.1f} %], "
          f"rN = N contended rounds measured again; {time.perf_counter() - started:.0f} s in all")
    print(tabulate(rows, ["model", "bs", "quiet", "load (2 busy processes)", "load not slower", "threads=1",
                          "threads=1 vs quiet", "threads=1 interval"], tablefmt="github", disable_numparse=True))
    if args.compare:
        met += compare_runs(args.dir, results)
    print(f"\ntargets met: {sum(met)}/{len(met)}")


if __name__ == "__main__":
    main()
