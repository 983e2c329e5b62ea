"""CPU contention from /proc/stat counters and other processes on an accelerator (omzoo.timing.contention, R9).

The rule is tested on synthetic counters. On this machine only sanity is checked (never its load, which other
jobs change); the one test that makes load itself is marked slow and asserts a wide margin.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from omzoo.timing import contention
from omzoo.timing.contention import (
    CpuSnapshot,
    DeviceProcess,
    RoundMonitor,
    device_processes,
    is_contended,
    other_load,
    parse_npu_smi,
    parse_nvidia_apps,
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


def test_take_reads_sane_counters_here() -> None:
    first = CpuSnapshot.take()
    if first is None:
        pytest.skip("no /proc/stat on this platform")
    sum(i * i for i in range(200_000))
    second = CpuSnapshot.take()
    assert second is not None
    allowed = len(os.sched_getaffinity(0))
    assert 1 <= first.cores <= max(allowed, os.cpu_count() or 1)
    assert first.ticks_per_s > 0
    assert 0 <= first.steal_ticks <= first.busy_ticks
    assert first.own_cpu_s >= 0
    load = other_load(first, second)
    assert load is not None
    assert load.wall_s > 0 and load.own_cores >= 0 and load.others_cores >= 0 and load.steal_cores >= 0


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

NVIDIA_APPS = """\
4242, 1536 MiB
5151, [N/A]
777, 20480 MiB
"""

# The shape observed on 910B hosts: device table, then the process table (names may be empty).
NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                 Version: 23.0.rc3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.6        40                0    / 0             |
| 0                         | 0000:C1:00.0  | 12          0    / 0          40321/ 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 90.1        38                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3161 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 31337         | python3                  | 37709                   |
| 0       0                 | 777           |                          | 132                     |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""

NPU_SMI_310P_IDLE = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 22.0.0                       Version: 22.0.2                                                   |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 8       310P3                 | OK              | NA           42                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 0            1674 / 21527                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| No running processes found in NPU 8                                                                    |
+===============================+=================+======================================================+
"""


def test_nvidia_compute_apps() -> None:
    assert parse_nvidia_apps(NVIDIA_APPS, own_pid=777) == [DeviceProcess("gpu", 4242, 1536.0),
                                                          DeviceProcess("gpu", 5151, None)]
    assert parse_nvidia_apps("", own_pid=1) == []
    assert parse_nvidia_apps("No running processes found\n", own_pid=1) == []


def test_npu_smi_process_table() -> None:
    assert parse_npu_smi(NPU_SMI_910B, own_pid=777) == [DeviceProcess("npu:0", 31337, 37709.0, "python3")]
    assert [p.pid for p in parse_npu_smi(NPU_SMI_910B, own_pid=1)] == [31337, 777]


def test_npu_smi_idle_and_variants() -> None:
    assert parse_npu_smi(NPU_SMI_310P_IDLE, own_pid=1) == []
    other_header = "| NPU ID | Process id | Process name | Process memory(MB) |\n| 3 | 998 | python | 2 |\n"
    assert parse_npu_smi(other_header, own_pid=1) == [DeviceProcess("npu:3", 998, 2.0, "python")]
    reordered = "| Process id | NPU |\n| 998 | 5 |\n"
    assert parse_npu_smi(reordered, own_pid=1) == [DeviceProcess("npu:5", 998, None, "")]
    assert parse_npu_smi("| 0 0 | 1234 | python3 | 3056 |\n", own_pid=1) == []  # rows without a header
    assert parse_npu_smi("npu-smi: command failed\n", own_pid=1) == []


def fake_tool(bin_dir: Path, name: str, output: str, rc: int = 0) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({output!r})\nsys.exit({rc})\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_device_processes_runs_both_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path, "nvidia-smi", NVIDIA_APPS)
    fake_tool(tmp_path, "npu-smi", NPU_SMI_910B)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert [(p.device, p.pid) for p in device_processes(own_pid=777)] == [("gpu", 4242), ("gpu", 5151),
                                                                          ("npu:0", 31337)]


def test_missing_or_failing_tools_give_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert device_processes() == []
    fake_tool(tmp_path, "nvidia-smi", NVIDIA_APPS, rc=9)
    assert device_processes() == []


def test_own_pid_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contention, "_output", lambda cmd: f"{os.getpid()}, 10 MiB\n" if "nvidia-smi" in cmd else "")
    assert device_processes() == []
