"""Paired, interleaved rounds of two toolkits on one host (`omzoo abtest`; README, Comparing toolkits).

Two runs of one commit minutes apart drift by 5-8 % on a shared machine (load, clocks, memory bandwidth), far more
than the spread inside either run, so comparing two separate runs is either deaf or wrong. Here each side keeps one
worker process (omzoo.timing.worker) with its session loaded, and the coordinator runs rounds in pairs, one per
side, back to back, the order inside each pair drawn from a seeded generator and recorded. Whatever the two rounds
of a pair share cancels in their ratio; the verdict is read from the pair ratios alone:

- per pair, HEAD/BASE of each per-round metric (throughputs and latency percentiles);
- their median with the sign-test interval (order statistics of the sorted ratios, omzoo.timing.stats), exact for
  any distribution as long as the pairs are independent;
- pairs are added, looking every `look_every` from `min_pairs` on, until the interval of both throughputs is
  narrower than ±min_effect or already lies beyond it, or `max_pairs` / `max_s` is spent. Stopping on what the
  interval shows would make a 95 % interval cover less than 95 %; every look is therefore made at the Bonferroni
  level (stats.look_level), and the coverage reported is the union bound over every look the rule could make.

Load is recorded per round (others' CPU, as bench measures it). A pair in which load began or ended between its two
rounds (one contended, one not) is measured again, at most `max_repeats` times per point; load that both rounds saw
is kept: it hit both sides alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from omzoo.core.metrics import get
from omzoo.core.params import AbtestConfig, BenchConfig
from omzoo.timing.stats import MedianInterval, interval_coverage, look_level, looks, median_interval

SIDES = ("base", "head")
#: the metrics whose intervals decide when to stop (the latency percentiles ride along)
STOP_ON = ("throughput_compute_ips", "throughput_e2e_ips")
INTERVAL = ("sign test on the pair ratios HEAD/BASE: order statistics [r(k), r(n+1-k)] around their median, each "
            "look at the Bonferroni level, coverage = union bound over the looks")


class WorkerError(RuntimeError):
    """A side's worker failed or died; the message names the side and ends with its log's last lines."""


@dataclass(frozen=True)
class Launch:
    """How to start one side's worker: its Python (the side's environment), working directory and environment
    variables (this checkout's omzoo first on PYTHONPATH), and where its stderr goes."""

    side: str
    python: str
    cwd: Path
    env: dict[str, str]
    log: Path


class Worker:
    """One side's worker process, started once and asked for rounds; ``with Worker(launch) as w: ...``."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.extra_env: dict[str, str] = {}

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.launch.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.launch.log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen([self.launch.python, "-m", "omzoo.timing.worker"], cwd=self.launch.cwd,
                                     env={**self.launch.env, **self.extra_env}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True)

    def _tail(self) -> str:
        try:
            lines = self.launch.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return ("; its log " + str(self.launch.log) + " ends: " + " | ".join(lines[-3:])) if lines else ""

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request, one reply; a dead worker or an error reply is a WorkerError naming the side."""
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            raise WorkerError(f"{self.launch.side}: worker not started")
        try:
            self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            code = self.proc.wait()
            raise WorkerError(f"{self.launch.side}: worker ({self.launch.python}) exited with status {code} "
                              f"during {op}{self._tail()}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"{self.launch.side}: {op}: {reply['error']}{self._tail()}")
        return reply

    def load(self, compiled: Path, bench: BenchConfig) -> dict[str, Any]:
        """Open the artefact and warm up; a backend that must start in its own environment (acl: CANN's
        set_env.sh) gets a worker started again in it, once."""
        reply = self.call("load", compiled=str(compiled), bench=asdict(bench))
        if "restart" in reply:
            if self.extra_env:
                raise WorkerError(f"{self.launch.side}: still not in the environment the backend needs: "
                                  f"{reply.get('message', '')}")
            self.close()
            self.extra_env = dict(reply["restart"])
            self.start()
            reply = self.call("load", compiled=str(compiled), bench=asdict(bench))
            if "restart" in reply:
                raise WorkerError(f"{self.launch.side}: still not in the environment the backend needs: "
                                  f"{reply.get('message', '')}")
        return reply["ok"]

    def round(self, warmup_iters: int) -> dict[str, Any]:
        return self.call("round", warmup_iters=warmup_iters)["ok"]

    def infer(self, shards: Path) -> dict[str, Any]:
        return self.call("infer", shards=str(shards))["ok"]

    def close(self) -> None:
        if self.proc is not None:
            try:
                if self.proc.poll() is None and self.proc.stdin is not None:
                    self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                    self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Pair:
    """Two rounds back to back, `first` ran first; `repeats`: how many times it was measured again because load
    began or ended between its rounds."""

    first: str
    base: dict[str, Any]
    head: dict[str, Any]
    repeats: int = 0

    def ratio(self, metric: str) -> float:
        return float(self.head[metric]) / float(self.base[metric])

    @property
    def mismatched(self) -> bool:
        return bool(self.base["contended"]) != bool(self.head["contended"])

    @property
    def loaded(self) -> bool:
        return bool(self.base["contended"] and self.head["contended"])


@dataclass
class PairedRun:
    """Every pair of one (model, bs), the looks made, and why it stopped."""

    pairs: list[Pair] = field(default_factory=list)
    remeasured: list[Pair] = field(default_factory=list)  # dropped: load began or ended between the two rounds
    schedule: list[int] = field(default_factory=list)  # the looks the rule could make
    stopped: str = ""
    elapsed_s: float = 0.0
    level: float = 0.95
    look_level: float = 0.95

    def ratios(self, metric: str) -> np.ndarray:
        return np.asarray([p.ratio(metric) for p in self.pairs])

    def interval(self, metric: str) -> MedianInterval:
        """The median pair ratio and its interval at the per-look level."""
        return median_interval(self.ratios(metric), self.look_level)

    @property
    def coverage(self) -> float:
        """Lower bound on the chance that the reported interval covers the true median ratio, whatever look the
        rule stopped at: 1 - sum over every possible look of its miss probability (the final look included where
        a time budget ended the run between two scheduled looks)."""
        n = len(self.pairs)
        at = sorted(set(self.schedule) | ({n} if n else set()))
        return max(0.0, 1.0 - sum(1.0 - interval_coverage(k, self.look_level) for k in at if k >= 1))


def order(seed: int, key: str) -> np.random.Generator:
    """The generator that decides which side runs first in each pair of one point: seeded by `abtest.seed` and
    the point, so a rerun draws the same orders and two points do not share one."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def settled(iv: MedianInterval, min_effect: float) -> bool:
    """Narrow enough to stop: within ±min_effect of its median, or wholly beyond 1 ± min_effect."""
    return (iv.high - iv.low) / 2 <= min_effect or iv.low >= 1 + min_effect or iv.high <= 1 - min_effect


def _one_pair(workers: dict[str, Worker], first: str, warmup_iters: int) -> Pair:
    rounds = {}
    for side in (first, "head" if first == "base" else "base"):
        rounds[side] = workers[side].round(warmup_iters)
    return Pair(first, rounds["base"], rounds["head"])


def run_pairs(workers: dict[str, Worker], cfg: AbtestConfig, key: str, progress: bool = True) -> PairedRun:
    """Pairs for one (model, bs) until the stopping rule or a budget ends them (module docstring)."""
    schedule = looks(cfg.min_pairs, cfg.look_every, cfg.max_pairs)
    run = PairedRun(schedule=schedule, level=cfg.level, look_level=look_level(cfg.level, len(schedule)))
    rng = order(cfg.seed, key)
    start = time.monotonic()
    unit = get("bench", STOP_ON[0])
    with tqdm(total=cfg.max_pairs, desc=f"abtest {key}", unit="pair", file=sys.stderr, disable=None if progress
              else True, dynamic_ncols=True) as bar:
        repeats = 0
        while len(run.pairs) < cfg.max_pairs:
            if time.monotonic() - start >= cfg.max_s:
                run.stopped = f"time budget abtest.max_s {cfg.max_s:g} s spent"
                break
            pair = _one_pair(workers, "head" if rng.random() < 0.5 else "base", cfg.switch_warmup_iters)
            pair.repeats = repeats
            if pair.mismatched and repeats < cfg.max_repeats:
                repeats += 1
                run.remeasured.append(pair)
                bar.set_postfix_str("load began or ended within a pair: measuring it again")
                continue
            repeats = 0
            run.pairs.append(pair)
            bar.update(1)
            n = len(run.pairs)
            if n >= 2:
                iv = run.interval(unit.name)
                bar.set_postfix_str(f"compute HEAD/BASE {iv.median:.3f} [{iv.low:.3f}, {iv.high:.3f}]")
            if n in schedule and all(settled(run.interval(m), cfg.min_effect) for m in STOP_ON):
                run.stopped = f"interval settled at look {schedule.index(n) + 1} of {len(schedule)} ({n} pairs)"
                break
        else:
            run.stopped = f"pair budget abtest.max_pairs {cfg.max_pairs} spent"
    run.elapsed_s = time.monotonic() - start
    return run


def launch_env(python_path: Path) -> dict[str, str]:
    """A worker's environment: this process's, with `python_path` (this checkout's src) first on PYTHONPATH."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(python_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env

