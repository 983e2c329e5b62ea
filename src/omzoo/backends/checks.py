"""Host checks: what `omzoo doctor` prints, one line per check. Each backend makes its own (Backend.host_checks);
the ones several backends share (the toolkit pin, threads against the usable cores) are built here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from omzoo.core.provenance import cpu_model, usable_cores

#: the name of the check that says where a backend would run; doctor's one-line verdict on a backend quotes it
DEVICE = "device"


@dataclass(frozen=True)
class Check:
    """One line of doctor's output: what was checked, how it went, what was found, and what to do if it failed."""

    name: str
    status: str  # "ok", "FAIL", or "skip" (an earlier check it needs failed)
    detail: str
    fix: str = ""

    @classmethod
    def passed(cls, name: str, detail: str) -> Check:
        return cls(name, "ok", detail)

    @classmethod
    def failed(cls, name: str, detail: str, fix: str) -> Check:
        return cls(name, "FAIL", detail, fix)

    @classmethod
    def skipped(cls, name: str, needs: str) -> Check:
        return cls(name, "skip", f"needs {needs}")

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<16} {self.detail}"
        return f"{text}  → fix: {self.fix}" if self.status == "FAIL" and self.fix else text


@dataclass(frozen=True)
class HostPlan:
    """What a backend's checks hold the host against: the branch's toolkit pin ("" = any version) and the files the
    pipeline will write under `root` for these models and batch sizes (some runtimes restrict their paths)."""

    toolkit_version: str = ""
    root: Path = Path()
    models: tuple[str, ...] = ()
    batch_sizes: tuple[int, ...] = ()


def _components(version: str) -> list[str]:
    return [c for c in re.split(r"[.+]", version.strip()) if c]


def version_matches(pinned: str, installed: str) -> bool:
    """`1.32` matches 1.32.0 and 1.32.1, never 1.3 or 1.320: the pin's components are a prefix of the installed
    version's (CANN: `8.0` matches 8.0.RC3; torch: `2.13.0` matches 2.13.0+cpu)."""
    want = _components(pinned)
    return bool(want) and _components(installed)[: len(want)] == want


def toolkit_check(installed: str, expected: str, fix: str) -> Check:
    """compile's rule on the installed version: the pin's components are a prefix of it (empty pin = any)."""
    pinned = f"toolkit.version {expected!r}" if expected else "toolkit.version empty: any version"
    if expected and not version_matches(expected, installed):
        return Check.failed("toolkit.version", f"installed {installed}, {pinned}", fix)
    return Check.passed("toolkit.version", f"installed {installed} ({pinned})")


def threads_check(threads: int, option: str) -> Check:
    """More threads than usable cores makes a runtime's workers fight for them: `option` is the key to lower."""
    cores = usable_cores()
    if threads > cores:
        return Check.failed("threads", f"{threads} threads on {cores} usable cores (oversubscribed)",
                            f"set {option} to {cores} or less")
    return Check.passed("threads", f"{threads} threads on {cores} usable cores ({cpu_model()})")
