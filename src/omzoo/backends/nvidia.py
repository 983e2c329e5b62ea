"""The NVIDIA side of a host, as `nvidia-smi` reports it: for the backends whose accelerator is a CUDA GPU (torch on
CUDA, onnxruntime's CUDA and TensorRT providers). Nothing here imports a runtime; without a driver every answer is
empty."""

from __future__ import annotations

import re

from omzoo.backends.base import Backend, DeviceProcess
from omzoo.core.provenance import command_output

NVIDIA_SMI = "nvidia-smi"


def query_gpu(fields: str) -> str:
    """`nvidia-smi --query-gpu=FIELDS` as CSV text, one line per GPU; "" where there is no NVIDIA driver."""
    return command_output([NVIDIA_SMI, f"--query-gpu={fields}", "--format=csv,noheader"])


def driver_version() -> str:
    """The NVIDIA driver's version ("" without one)."""
    return (query_gpu("driver_version").splitlines() or [""])[0]


def _number(text: str) -> float | None:
    m = re.match(r"\d+(?:\.\d+)?", text)
    return float(m.group()) if m else None


def parse_compute_apps(text: str) -> list[DeviceProcess]:
    """Rows of `nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader` ("1234, 512 MiB"; memory may
    be "[N/A]"). Anything that is not such a row (a header, a message) is skipped."""
    procs = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if cells[0].isdigit():
            procs.append(DeviceProcess("gpu", int(cells[0]), _number(cells[1]) if len(cells) > 1 else None))
    return procs


def compute_apps() -> list[DeviceProcess]:
    """The processes computing on any of this host's NVIDIA GPUs; [] without nvidia-smi or when it fails."""
    return parse_compute_apps(command_output([NVIDIA_SMI, "--query-compute-apps=pid,used_memory",
                                              "--format=csv,noheader"]))


class GpuBackend(Backend):
    """A backend whose accelerator, when accelerator() says "gpu", is an NVIDIA GPU: nvidia-smi lists what else is
    on it and its state before a measurement."""

    def device_processes(self) -> list[DeviceProcess]:
        return compute_apps() if self.accelerator() else []

    def device_state(self) -> dict[str, str]:
        state = query_gpu("name,utilization.gpu,memory.used") if self.accelerator() else ""
        return {"gpu_before": state} if state else {}
