"""Was the machine busy while a round ran, and is anything else on the accelerator before it starts?

CPU: over a round, the CPU time spent by everything else on the CPUs this process may use is
(Δ busy ticks of those CPUs / ticks per second − Δ own CPU seconds) / Δ wall. Busy = user + nice + system + irq
+ softirq + steal from /proc/stat (guest time is already inside user). Own = time.process_time(), which covers
every thread of this process, so ONNX Runtime's spinning workers count as ours, not as others (a child process
would count as other).

Which CPUs: the aggregate `cpu` line of /proc/stat sums every online CPU of the machine, while this process may be
pinned to a few (taskset, cpuset). Its own time can only be spent on the CPUs it may use, so the busy ticks are
summed over exactly those `cpuN` lines and the share is taken over the same count: a job on a CPU we never run on
does not slow us and is not counted. In a container /proc/stat shows the host, so a busy host flags rounds: numbers
measured there are not comparable anyway.

Device: `other_processes()` lists what else holds the accelerator, from what the backend's device_processes()
finds there (each backend asks its own tool), less this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from omzoo.backends.base import DeviceProcess
from omzoo.core.params import BenchConfig

# Others' CPU above this many cores flags a round: `bench.contention_cores`, whose default and the reason for it
# live with the other bench defaults (omzoo.core.params.BenchConfig).
OTHERS_CORES = BenchConfig.contention_cores
# Steal is time a virtual CPU of ours wanted to run and the hypervisor ran something else: it stalls our threads
# directly, so a lower bar than for other processes (steal also counts among others' time).
STEAL_CORES = 0.02


@dataclass(frozen=True)
class CpuSnapshot:
    """The counters at one instant; two of them bracket a round (see `other_load`)."""

    wall_s: float  # time.monotonic()
    busy_ticks: int  # user+nice+system+irq+softirq+steal, summed over the `cores` CPUs this process may use
    steal_ticks: int  # steal over the same CPUs
    own_cpu_s: float  # this process, all threads
    ticks_per_s: int  # USER_HZ, the unit of /proc/stat
    cores: int  # how many CPUs the tick sums cover

    @classmethod
    def take(cls) -> CpuSnapshot | None:
        """Read the real counters; None where there is no /proc/stat (not Linux): the load is then unknown."""
        wall, own = time.monotonic(), time.process_time()
        try:
            text = Path("/proc/stat").read_text()
        except OSError:
            return None
        counted = parse_proc_stat(text, os.sched_getaffinity(0))
        if counted is None:
            return None
        busy, steal, cores = counted
        return cls(wall_s=wall, busy_ticks=busy, steal_ticks=steal, own_cpu_s=own,
                   ticks_per_s=os.sysconf("SC_CLK_TCK"), cores=cores)


@dataclass(frozen=True)
class RoundLoad:
    """CPU use over one round, in cores (1.0 = one core busy for the whole round)."""

    wall_s: float
    cores: int  # the CPUs this process may use
    own_cores: float
    others_cores: float  # everything else on those CPUs, steal included
    steal_cores: float

    @property
    def others_share(self) -> float:
        """Others' share of the CPUs this process may use (0..1)."""
        return self.others_cores / self.cores

    @property
    def steal_share(self) -> float:
        return self.steal_cores / self.cores


def _busy_steal(fields: list[str]) -> tuple[int, int]:
    """Busy and steal ticks of one `cpu` line's numbers; kernels before 2.6.11 lack the later columns."""
    v = [int(f) for f in fields[:8]]
    v += [0] * (8 - len(v))
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return user + nice + system + irq + softirq + steal, steal


def parse_proc_stat(text: str, cpus: Collection[int] | None = None) -> tuple[int, int, int] | None:
    """(busy ticks, steal ticks, CPUs counted) from /proc/stat text, summed over the `cpuN` lines of `cpus`.

    Falls back to the aggregate `cpu` line and the number of `cpuN` lines when `cpus` is None or none of them is
    listed; None when there is no cpu line at all."""
    per_cpu: dict[int, tuple[int, int]] = {}
    total: tuple[int, int] | None = None
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            total = _busy_steal(rest.split())
        elif name.startswith("cpu") and name[3:].isdigit():
            per_cpu[int(name[3:])] = _busy_steal(rest.split())
    mine = [per_cpu[c] for c in cpus or () if c in per_cpu]
    if mine:
        return sum(b for b, _ in mine), sum(s for _, s in mine), len(mine)
    if total is None:
        return None
    return total[0], total[1], max(len(per_cpu), 1)


def other_load(before: CpuSnapshot, after: CpuSnapshot) -> RoundLoad | None:
    """What others (and the hypervisor) used between two snapshots; None when the counters cannot say.

    Unknown, never a guess: no wall time elapsed, the CPU set changed, or a counter went backwards (a wrap, a
    CPU taken offline). Others' time is clamped at 0: process time is precise while /proc/stat is sampled per
    tick, so an idle machine can read a few ticks below our own use.
    """
    wall = after.wall_s - before.wall_s
    busy = after.busy_ticks - before.busy_ticks
    steal = after.steal_ticks - before.steal_ticks
    own = after.own_cpu_s - before.own_cpu_s
    if wall <= 0 or busy < 0 or steal < 0 or own < 0 or after.cores != before.cores:
        return None
    hz = after.ticks_per_s
    return RoundLoad(wall_s=wall, cores=after.cores, own_cores=own / wall,
                     others_cores=max(busy / hz - own, 0.0) / wall, steal_cores=steal / hz / wall)


def is_contended(load: RoundLoad | None, threshold: float = OTHERS_CORES, steal_threshold: float = STEAL_CORES) -> bool:
    """True when others used more than `threshold` cores or the hypervisor stole more than `steal_threshold`
    cores during the round; an unknown load is never flagged."""
    if load is None:
        return False
    return load.others_cores > threshold or load.steal_cores > steal_threshold


class RoundMonitor:
    """Measure one round: ``with RoundMonitor() as m: run_round()``, then ``m.load`` and ``m.contended``."""

    def __init__(self, threshold: float = OTHERS_CORES, steal_threshold: float = STEAL_CORES) -> None:
        self.threshold = threshold
        self.steal_threshold = steal_threshold
        self.load: RoundLoad | None = None
        self._before: CpuSnapshot | None = None

    def __enter__(self) -> RoundMonitor:
        self._before = CpuSnapshot.take()
        return self

    def __exit__(self, *exc: object) -> None:
        after = CpuSnapshot.take()
        self.load = other_load(self._before, after) if self._before and after else None

    @property
    def contended(self) -> bool:
        return is_contended(self.load, self.threshold, self.steal_threshold)


def other_processes(listed: Iterable[DeviceProcess], own_pid: int | None = None) -> list[DeviceProcess]:
    """What else holds the accelerator: the processes `listed` (what a backend's device_processes() found), less
    this one.

    Call it before the backend opens the device where possible: in a PID namespace (a container) the tools report
    host pids, so our own process cannot be recognised and would be listed.
    """
    own = os.getpid() if own_pid is None else own_pid
    return [p for p in listed if p.pid != own]
