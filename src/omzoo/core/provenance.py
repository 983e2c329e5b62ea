"""Where a number was measured: host CPU, GPU state, code revision. Shared by backends and stages."""

from __future__ import annotations

import platform
import subprocess


def _output(cmd: list[str]) -> str:
    """A command's stripped stdout, or "" when it is missing, fails or hangs."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


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


def nvidia_smi(fields: str) -> str:
    """`nvidia-smi --query-gpu=FIELDS` as CSV text; empty where there is no NVIDIA driver."""
    return _output(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"])


def git_revision() -> str:
    """Short commit of the working tree ("" outside git)."""
    return _output(["git", "rev-parse", "--short", "HEAD"])
