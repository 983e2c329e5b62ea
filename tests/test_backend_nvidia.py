"""backends/nvidia.py against a fake nvidia-smi: its process table and GPU queries parsed, and the backends whose
accelerator is a CUDA GPU (torch, onnxruntime) asking it only when they run on one; without the tool, or when it
fails, every answer is empty."""

from __future__ import annotations

import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from omzoo.backends import nvidia
from omzoo.backends.base import DeviceProcess
from omzoo.backends.nvidia import GpuBackend
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.backends.torch import TorchBackend

NVIDIA_APPS = """\
4242, 1536 MiB
5151, [N/A]
777, 20480 MiB
"""
#: the GPU backends, configured for the CPU
ON_CPU: dict[str, Callable[[], GpuBackend]] = {
    "torch": lambda: TorchBackend({"device": "cpu"}),
    "onnxruntime": lambda: OrtBackend({"providers": ["CPUExecutionProvider"]}),
}


def test_compute_apps_rows() -> None:
    """Every row (the caller leaves its own pid out); headers and messages are not rows."""
    assert nvidia.parse_compute_apps(NVIDIA_APPS) == [DeviceProcess("gpu", 4242, 1536.0),
                                                      DeviceProcess("gpu", 5151, None),
                                                      DeviceProcess("gpu", 777, 20480.0)]
    assert nvidia.parse_compute_apps("") == []
    assert nvidia.parse_compute_apps("No running processes found\n") == []
    assert nvidia.parse_compute_apps("pid, used_gpu_memory [MiB]\n") == []


def fake_nvidia_smi(bin_dir: Path, rc: int = 0) -> Path:
    """An nvidia-smi answering the queries omzoo makes; every call is appended to calls.txt."""
    tool = bin_dir / "nvidia-smi"
    tool.write_text(f"""#!{sys.executable}
import sys
open({str(bin_dir / "calls.txt")!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
answers = {{"--query-compute-apps=pid,used_memory": {NVIDIA_APPS!r},
           "--query-gpu=driver_version": "570.86.15\\n570.86.15\\n",
           "--query-gpu=name,utilization.gpu,memory.used": "NVIDIA H200, 3 %, 512 MiB\\n"}}
sys.stdout.write(answers[sys.argv[1]])
sys.exit({rc})
""")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return bin_dir / "calls.txt"


@pytest.mark.parametrize("name", list(ON_CPU))
def test_the_gpu_side_comes_from_nvidia_smi(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU nothing asks nvidia-smi, even where one is installed; on a GPU it lists the processes and the
    state."""
    calls = fake_nvidia_smi(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    on_cpu = ON_CPU[name]()
    assert on_cpu.accelerator() is None
    assert on_cpu.device_processes() == [] and on_cpu.device_state() == {} and not calls.exists()
    assert nvidia.driver_version() == "570.86.15"  # one line per GPU: the first
    monkeypatch.setattr(type(on_cpu), "accelerator", lambda self: "gpu")
    on_gpu = ON_CPU[name]()
    assert [p.pid for p in on_gpu.device_processes()] == [4242, 5151, 777]
    assert on_gpu.device_state() == {"gpu_before": "NVIDIA H200, 3 %, 512 MiB"}
    assert calls.read_text().splitlines()[-2:] == ["--query-compute-apps=pid,used_memory --format=csv,noheader",
                                                  "--query-gpu=name,utilization.gpu,memory.used --format=csv,noheader"]


@pytest.mark.parametrize("name", list(ON_CPU))
def test_no_or_failing_nvidia_smi_gives_nothing(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(type(ON_CPU[name]()), "accelerator", lambda self: "gpu")
    backend = ON_CPU[name]()
    assert backend.device_processes() == [] and backend.device_state() == {} and nvidia.driver_version() == ""
    fake_nvidia_smi(tmp_path, rc=9)
    assert backend.device_processes() == [] and backend.device_state() == {} and nvidia.driver_version() == ""
    assert nvidia.query_gpu("name,utilization.gpu,memory.used") == ""  # its output is not trusted
