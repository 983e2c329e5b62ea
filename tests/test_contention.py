"""CPU contention from /proc/stat counters, and other processes on an accelerator as the backend lists them
(omzoo.timing.contention).

The rule is tested on synthetic counters. On this machine only sanity is checked (never its load, which other
jobs change); the one test that makes load itself is marked slow and asserts a wide margin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from omzoo.backends.base import DeviceProcess, backend_names
from omzoo.stages import bench
from omzoo.timing import contention
from omzoo.timing.contention import (
    CpuSnapshot,
    RoundMonitor,
    is_contended,
    other_load,
    other_processes,
    parse_proc_stat,
)

HZ = 100


def snap(wall: float, busy_s: float, own_s: float, steal_s: float = 0.0, cores: int = 2) -> CpuSnapshot:
    """Counters in seconds, stored as /proc/stat ticks."""
    return CpuSnapshot(wall_s=wall, busy_ticks=round(busy_s * HZ), steal_ticks=round(steal_s * HZ), own_cpu_s=own_s,
                       ticks_per_s=HZ, cores=cores)


START = snap(1000.0, busy_s=5000.0, own_s=3.0, steal_s=1.0)


def after(wall: float, busy: float, own: float, steal: float = 0.0, cores: int = 2) -> CpuSnapshot:
    """START advanced by the given deltas (seconds)."""
    return snap(START.wall_s + wall, 5000.0 + busy, 3.0 + own, 1.0 + steal, cores)


# ------------------------------------------------------------------------------------------ the rule


def test_idle_machine_is_not_flagged() -> None:
    load = other_load(START, after(10.0, busy=0.2, own=0.0))  # background: 0.02 core
    assert load is not None
    assert load.others_cores == pytest.approx(0.02)
    assert not is_contended(load)


def test_our_own_heavy_use_is_not_flagged() -> None:
    """Two spinning ORT workers fill both cores: all the busy time is ours."""
    load = other_load(START, after(10.0, busy=20.0, own=19.95))
    assert load is not None
    assert load.own_cores == pytest.approx(1.995)
    assert load.others_cores == pytest.approx(0.005)
    assert not is_contended(load)


def test_own_time_above_sampled_busy_time_clamps_to_zero() -> None:
    load = other_load(START, after(10.0, busy=19.9, own=20.0))
    assert load is not None and load.others_cores == 0.0
    assert not is_contended(load)


def test_other_process_using_half_a_core_is_flagged() -> None:
    load = other_load(START, after(10.0, busy=20.0, own=15.0))
    assert load is not None
    assert load.others_cores == pytest.approx(0.5)
    assert load.others_share == pytest.approx(0.25)  # of the two CPUs this process may use
    assert is_contended(load)


def test_threshold_is_in_cores() -> None:
    below = other_load(START, after(10.0, busy=10.4, own=10.0))
    above = other_load(START, after(10.0, busy=10.6, own=10.0))
    assert not is_contended(below)
    assert is_contended(above)
    assert not is_contended(above, threshold=0.1)


def test_steal_is_flagged() -> None:
    """The hypervisor took 0.03 core: below the others' bar (steal counts among others) but stolen from us."""
    load = other_load(START, after(10.0, busy=10.3, own=10.0, steal=0.3))
    assert load is not None
    assert load.steal_cores == pytest.approx(0.03)
    assert load.steal_share == pytest.approx(0.015)
    assert load.others_cores == pytest.approx(0.03)
    assert is_contended(load)
    assert not is_contended(load, steal_threshold=0.05)


@pytest.mark.parametrize("end", [
    after(0.0, busy=1.0, own=0.5),  # no wall time
    after(-1.0, busy=1.0, own=0.5),  # clock went back (snapshots swapped)
    after(10.0, busy=-1.0, own=0.5),  # busy counter went backwards (wrap, CPU offlined)
    after(10.0, busy=1.0, own=0.5, steal=-0.5),
    after(10.0, busy=1.0, own=-0.5),
    after(10.0, busy=1.0, own=0.5, cores=1),  # the CPU set changed during the round
])
def test_counters_that_cannot_say_give_unknown_never_flagged(end: CpuSnapshot) -> None:
    assert other_load(START, end) is None
    assert not is_contended(None)


# ------------------------------------------------------------------------------------------ /proc/stat

PROC_STAT = """\
cpu  4000 10 1000 90000 50 20 30 40 7 0
cpu0 1000 0 200 23000 10 5 5 10 7 0
cpu1 1500 10 300 22000 20 5 10 20 0 0
cpu2 500 0 100 23000 10 5 5 5 0 0
cpu3 1000 0 400 22000 10 5 10 5 0 0
intr 276274 0 0 0
ctxt 290395
"""


def test_proc_stat_sums_the_cpus_we_may_use() -> None:
    # cpu1 + cpu3: user+nice+system+irq+softirq+steal (idle, iowait and guest are not added)
    assert parse_proc_stat(PROC_STAT, {1, 3}) == (1500 + 10 + 300 + 5 + 10 + 20 + 1000 + 400 + 5 + 10 + 5, 25, 2)


@pytest.mark.parametrize("cpus", [None, set(), {7}])
def test_proc_stat_falls_back_to_the_aggregate_line(cpus: set[int] | None) -> None:
    assert parse_proc_stat(PROC_STAT, cpus) == (4000 + 10 + 1000 + 20 + 30 + 40, 40, 4)


def test_proc_stat_of_old_kernels_and_garbage() -> None:
    assert parse_proc_stat("cpu 10 1 5 100\ncpu0 10 1 5 100\n", {0}) == (16, 0, 1)  # no irq/softirq/steal yet
    assert parse_proc_stat("intr 1 2 3\n", {0}) is None
    assert parse_proc_stat("", None) is None


def test_take_reads_this_process_and_the_cpus_it_may_use() -> None:
    """Our own burnt CPU time shows in both counters: process time rises by it, and the busy ticks of the CPUs we
    may use rise by at least as much, give or take the per-tick sampling (a few ticks); the round's own share is the
    ratio of the two deltas."""
    first = CpuSnapshot.take()
    if first is None:
        pytest.skip("no /proc/stat on this platform")
    start = time.process_time()
    while time.process_time() - start < 0.3:
        pass
    second = CpuSnapshot.take()
    assert second is not None
    allowed = len(os.sched_getaffinity(0))
    assert 1 <= first.cores <= max(allowed, os.cpu_count() or 1)
    wall = second.wall_s - first.wall_s
    own = second.own_cpu_s - first.own_cpu_s
    busy = (second.busy_ticks - first.busy_ticks) / first.ticks_per_s
    assert 0.3 <= own <= wall * first.cores  # seconds of CPU, not ticks; no more than the CPUs could give
    assert busy >= own - 0.05, f"busy {busy:.3f} s on our CPUs, less than our own {own:.3f} s"
    assert busy <= wall * first.cores + 0.05  # only the CPUs we may use are summed
    load = other_load(first, second)
    assert load is not None and load.own_cores == pytest.approx(own / wall)


def test_monitor_on_synthetic_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = iter([START, after(10.0, busy=20.0, own=15.0)])
    monkeypatch.setattr(CpuSnapshot, "take", classmethod(lambda cls: next(snaps)))
    with RoundMonitor() as m:
        pass
    assert m.load is not None and m.load.others_cores == pytest.approx(0.5)
    assert m.contended
    snaps = iter([START, after(10.0, busy=20.0, own=15.0)])
    with RoundMonitor(threshold=1.0) as m:
        pass
    assert not m.contended


def test_monitor_without_counters_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CpuSnapshot, "take", classmethod(lambda cls: None))
    with RoundMonitor() as m:
        pass
    assert m.load is None
    assert not m.contended


def test_monitor_lets_errors_through(monkeypatch: pytest.MonkeyPatch) -> None:
    snaps = iter([START, after(10.0, busy=1.0, own=1.0)])
    monkeypatch.setattr(CpuSnapshot, "take", classmethod(lambda cls: next(snaps)))
    with pytest.raises(RuntimeError), RoundMonitor() as m:
        raise RuntimeError("round failed")
    assert m.load is not None and m.load.wall_s == 10.0


@pytest.mark.slow
def test_busy_child_process_is_flagged() -> None:
    """A child burns one core for 0.6 s inside the window; the margin (> 0.3 core) survives a busy machine."""
    if CpuSnapshot.take() is None:
        pytest.skip("no /proc/stat on this platform")
    burn = "import time\nt = time.perf_counter()\nwhile time.perf_counter() - t < 0.6:\n    pass\n"
    with RoundMonitor() as m:
        subprocess.run([sys.executable, "-c", burn], check=True)
    assert m.load is not None
    assert m.load.others_cores > 0.3
    assert m.contended


# ------------------------------------------------------------------------------------------ devices

LISTED = [DeviceProcess("gpu", 4242, 1536.0), DeviceProcess("gpu", 777, None), DeviceProcess("npu:0", 31337, 37709.0,
                                                                                              "python3")]


def test_other_processes_leave_out_this_one() -> None:
    assert other_processes(LISTED, own_pid=777) == [LISTED[0], LISTED[2]]
    assert other_processes(LISTED, own_pid=1) == LISTED
    assert other_processes([]) == []  # a CPU backend lists nothing


def test_own_pid_defaults_to_this_process() -> None:
    mine = DeviceProcess("gpu", os.getpid(), 10.0)
    assert other_processes([mine, LISTED[0]]) == [LISTED[0]]


@pytest.mark.parametrize("module", [contention, bench])
def test_the_device_is_asked_through_the_backend(module: ModuleType) -> None:
    """Neither this module nor the bench stage runs an accelerator's tool or names a backend: the backend object
    lists what is on its device (Backend.device_processes) and describes its state (Backend.device_state)."""
    source = Path(module.__file__ or "").read_text()
    assert not re.search(r"\w+-smi|_smi\b", source), "asks an accelerator's tool itself"
    named = [n for n in backend_names() if re.search(rf"\b{n}\b", source, re.IGNORECASE)]
    assert named == [], f"names the backend(s) {named}"
    assert "device_processes" in source
