"""How finely can a verdict see on a busy machine? Two runs (the compare way) against paired rounds (the abtest way),
at equal wall time, side by side, in one run.

RAN-92 (seeded random weights, uint8 ONNX, ONNX Runtime CPU) at bs 1, by default. Two cases:
- A/A: the same artefact on both sides (any verdict but unchanged is a false alarm);
- A/B: HEAD runs `onnxruntime.threads: 1`, BASE the default (one thread per core).
Each under a competing load: `busy` (one spinning process for the whole case) and `intermittent` (one spinning
process, 4 s on, 4 s off). Both methods use the same worker processes (omzoo.timing.worker), bench's rounds and
warm-up:
- two runs: BASE's worker measures `bench.rounds` rounds, then HEAD's; judged by compare's rule (stats.verdict with
  compare.min_effect and compare.drift);
- paired: omzoo.timing.pairs.run_pairs with as many pairs as the two runs had rounds a side (one look, so the
  same number of rounds and about the same wall time), judged by stats.judge with abtest.min_effect.
Printed: per repetition the ratio, its interval, the half-width and the verdict of each method; then the median
half-width per case, load and method. `--variants` measures what removes noise under load (A/A, busy): the switch
warm-up, the thread count against the usable cores, the round length, one line each.

    .venv/bin/python benchmarks/bench_abtest.py [--model ran92_cifar10] [--bs 1] [--reps 3] [--variants]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench_stability import build
from tabulate import tabulate

from omzoo.backends.artefact import compile_artefact
from omzoo.core import paths, zoo
from omzoo.core.io import write_bytes_atomic, write_json_atomic
from omzoo.core.params import AbtestConfig, BenchConfig
from omzoo.core.provenance import cpu_model, usable_cores
from omzoo.results.rules import CompareConfig
from omzoo.timing import worker
from omzoo.timing.pairs import Launch, Worker, launch_env, run_pairs
from omzoo.timing.stats import judge, verdict

SRC = Path(worker.__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results"
CASES = {"A/A": {}, "A/B threads=1": {"threads": 1}}


class Load:
    """One spinning process: for the whole `with` block, or `period` seconds on and `period` off."""

    def __init__(self, period: float = 0.0) -> None:
        self.period, self.proc = period, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._cycle, daemon=True)

    def _on(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def _off(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def _cycle(self) -> None:
        while not self._stop.is_set():
            self._on()
            self._stop.wait(self.period)
            self._off()
            self._stop.wait(self.period)

    def __enter__(self) -> Load:
        self._thread.start() if self.period else self._on()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.period:
            self._thread.join()
        self._off()


def variant(work: Path, model: str, bs: int, options: dict) -> Path:
    """The artefact compiled with these onnxruntime options (the default one from bench_stability's cache)."""
    base = build(work, model, bs)
    if not options:
        return base
    art = work / (paths.key(model, bs) + "-" + "-".join(f"{k}{v}" for k, v in sorted(options.items())))
    if not (art / "meta.json").is_file():
        compile_artefact(zoo.get(model), bs, art, "onnxruntime", options, onnx=work / f"{model}.onnx")
    return art


def workers(work: Path) -> dict[str, Worker]:
    return {s: Worker(Launch(s, sys.executable, work, launch_env(SRC), work / "logs" / f"{s}.log"))
            for s in ("base", "head")}


def two_runs(ws: dict[str, Worker], bench: BenchConfig, cmp: CompareConfig) -> dict:
    """BASE's rounds, then HEAD's: the shape of two branch runs, here seconds apart instead of hours."""
    start = time.monotonic()
    rounds = {s: [ws[s].round(0) for _ in range(bench.rounds)] for s in ("base", "head")}
    took = time.monotonic() - start
    metric = "throughput_compute_ips"
    v = verdict([r[metric] for r in rounds["base"]], [r[metric] for r in rounds["head"]], "higher",
                min_effect=cmp.min_effect, min_rounds=cmp.min_rounds, level=0.95, drift=cmp.drift)
    r = v.ratio
    assert r is not None
    low, high = r.low / (1 + cmp.drift), r.high * (1 + cmp.drift)
    outcome = v.outcome if v.outcome != "inconclusive" else "unchanged"  # contention is not judged here
    return {"method": "two runs", "ratio": r.ratio, "low": low, "high": high, "half": (high - low) / 2,
            "verdict": outcome, "n": bench.rounds, "s": took}


def paired(ws: dict[str, Worker], cfg: AbtestConfig, key: str, pairs: int) -> dict:
    run = run_pairs(ws, replace(cfg, min_pairs=pairs, look_every=pairs, max_pairs=pairs), key, progress=False)
    iv = run.interval("throughput_compute_ips")
    outcome, _ = judge(iv.median, iv.low, iv.high, "higher", cfg.min_effect)
    return {"method": "paired", "ratio": iv.median, "low": iv.low, "high": iv.high, "half": (iv.high - iv.low) / 2,
            "verdict": outcome, "n": len(run.pairs), "s": run.elapsed_s, "coverage": run.coverage,
            "loaded_pairs": sum(p.loaded for p in run.pairs), "remeasured": len(run.remeasured)}


def one_case(work: Path, arts: dict[str, Path], bench: BenchConfig, cfg: AbtestConfig, load: Load | None,
             key: str) -> list[dict]:
    ws = workers(work)
    for s, w in ws.items():
        w.start()
        w.load(arts[s], bench)
    try:
        with load or contextlib.nullcontext():
            blocked = two_runs(ws, bench, CompareConfig())
            pairs = paired(ws, cfg, key, bench.rounds)
    finally:
        for w in ws.values():
            w.close()
    return [blocked, pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ran92_cifar10")
    ap.add_argument("--bs", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path(".cache/bench-abtest"))
    ap.add_argument("--variants", action="store_true", help="also: what removes noise under load (A/A, busy)")
    args = ap.parse_args()
    work = args.dir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    bench, cfg = BenchConfig(), AbtestConfig()
    load_before = os.getloadavg()[0]
    rows: list[dict] = []
    loads = {"busy": lambda: Load(), "intermittent": lambda: Load(period=4.0)}
    for case, options in CASES.items():
        arts = {"base": variant(work, args.model, args.bs, {}), "head": variant(work, args.model, args.bs, options)}
        for load_name, make in loads.items():
            for rep in range(args.reps):
                for r in one_case(work, arts, bench, cfg, make(), f"{case}-{load_name}-{rep}"):
                    rows.append({"case": case, "load": load_name, "rep": rep, **r})
                    print(_line(rows[-1]), flush=True)
    if args.variants:
        arts = {s: variant(work, args.model, args.bs, {}) for s in ("base", "head")}
        one = {s: variant(work, args.model, args.bs, {"threads": 1}) for s in ("base", "head")}
        for name, a, b, c in (("as configured", arts, bench, cfg),
                              ("no switch warm-up", arts, bench, replace(cfg, switch_warmup_iters=0)),
                              (f"threads 1 (of {usable_cores()} cores)", one, bench, cfg),
                              ("rounds 0.5 s", arts, replace(bench, min_s=0.5), cfg),
                              ("rounds 2 s", arts, replace(bench, min_s=2.0), cfg)):
            r = one_case(work, a, b, c, Load(), f"variant-{name}")[1]
            rows.append({"case": "A/A", "load": "busy", "rep": 0, "variant": name, **r})
            print(_line(rows[-1]), flush=True)
    summary = [[case, load, method, f"{100 * statistics.median(r['half'] for r in group):.1f} %",
                " ".join(sorted({r['verdict'] for r in group})), len(group)]
               for (case, load, method), group in _groups(rows).items()]
    text = "\n".join([f"bench-abtest on {cpu_model()} ({usable_cores()} usable cores), {args.model} bs{args.bs}, "
                      f"bench.rounds {bench.rounds}, min_s {bench.min_s}, abtest.min_effect {cfg.min_effect}, "
                      f"compare.drift {CompareConfig().drift}; 1-minute load average {load_before:.1f} before, "
                      f"{os.getloadavg()[0]:.1f} after (other work on the machine adds to the load made here)", "",
                      tabulate([[r["case"], r["load"], r.get("variant", r["rep"]), r["method"], f"{r['ratio']:.3f}",
                                 f"[{r['low']:.3f}, {r['high']:.3f}]", f"±{100 * r['half']:.1f} %", r["verdict"],
                                 r["n"], f"{r['s']:.0f}"] for r in rows],
                               ["case", "load", "rep", "method", "ratio", "interval", "half-width", "verdict", "n",
                                "s"], tablefmt="github"), "",
                      tabulate(summary, ["case", "load", "method", "median half-width", "verdicts", "runs"],
                               tablefmt="github")])
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    write_bytes_atomic(RESULTS / "abtest-cpu.txt", (text + "\n").encode())
    write_json_atomic(RESULTS / "abtest-cpu.json", {"model": args.model, "bs": args.bs, "rows": rows})


def _groups(rows: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    out: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        out.setdefault((r["case"] + (f" ({r['variant']})" if "variant" in r else ""), r["load"], r["method"]),
                       []).append(r)
    return out


def _line(r: dict) -> str:
    return (f"{r['case']:>14} {r['load']:>12} {str(r.get('variant', r['rep'])):>22} {r['method']:>8}: "
            f"{r['ratio']:.3f} [{r['low']:.3f}, {r['high']:.3f}] ±{100 * r['half']:.1f} % {r['verdict']} "
            f"({r['n']}, {r['s']:.0f} s)")


if __name__ == "__main__":
    main()
