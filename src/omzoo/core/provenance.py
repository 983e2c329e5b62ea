"""Where a number was measured, in what every backend shares: the host CPU and the code revision. What an
accelerator reports about itself is its backend's to ask (omzoo.backends).

The toolkit fingerprint (README, Scaling past one machine) is the backend's account of the installed toolkit on
this host; here are its hash and its file (metrics/toolkit.json), which compile, infer and bench depend on.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

from omzoo.core.io import write_if_changed

#: the info-file (and meta.json, infer.json) field that holds the hash of the fingerprint a result was made under
FINGERPRINT = "toolkit_fingerprint"


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


def fingerprint_hash(fingerprint: dict[str, str]) -> str:
    """A short, stable name for a fingerprint: the first 16 hex digits of the sha256 of its sorted JSON."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint_file(fingerprint: dict[str, str]) -> bytes:
    """The toolkit file's bytes: the hash and the fingerprint it names, stable JSON."""
    body = {FINGERPRINT: fingerprint_hash(fingerprint), "toolkit": fingerprint}
    return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_fingerprint(path: Path, fingerprint: dict[str, str]) -> bool:
    """Write the toolkit file only when its content changes (so its mtime and DVC's hash of it stay); True if
    written."""
    return write_if_changed(path, fingerprint_file(fingerprint))


def read_fingerprint(path: Path) -> tuple[str, dict[str, str]]:
    """The hash and fingerprint of a toolkit file; ValueError naming it when it is not one, or was edited by hand
    (its hash no longer names its content)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        recorded, fingerprint = body[FINGERPRINT], body["toolkit"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise ValueError(f"{path}: not a toolkit file (written by `omzoo toolkit`); run `dvc repro toolkit`") \
            from None
    if not isinstance(fingerprint, dict) or fingerprint_hash(fingerprint) != recorded:
        raise ValueError(f"{path}: its {FINGERPRINT} {recorded!r} does not match its content (edited by hand?); "
                         "run `dvc repro toolkit`")
    return recorded, fingerprint
