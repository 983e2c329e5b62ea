"""Where a number was measured, in what every backend shares: the host CPU and the code revision. What an
accelerator reports about itself is its backend's to ask (omzoo.backends)."""

from __future__ import annotations

import os
import platform
import subprocess


def command_output(cmd: list[str], timeout: float = 10) -> str:
    """A command's stripped stdout, or "" when it is missing, fails or hangs: provenance is best effort."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def usable_cores() -> int:
    """The cores this process may run on (a container's affinity or taskset, not the host's count)."""
    return len(os.sched_getaffinity(0)) or 1 if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name (falls back to the architecture)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_revision() -> str:
    """Short commit of the working tree ("" outside git)."""
    return command_output(["git", "rev-parse", "--short", "HEAD"])
