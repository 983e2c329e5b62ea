"""backends/checks.py: the lines `omzoo doctor` prints, and the checks several backends share: the toolkit pin
(component by component, as compile holds it) and threads against the cores this process may use."""

from __future__ import annotations

import os

import pytest

from omzoo.backends import checks
from omzoo.backends.checks import Check, threads_check, toolkit_check, usable_cores, version_matches
from omzoo.core.provenance import cpu_model


@pytest.mark.parametrize(("pinned", "installed", "ok"), [
    ("1.32", "1.32.0", True), ("1.32", "1.32.1", True), ("1.32.0", "1.32.0", True), ("1.3", "1.32.0", False),
    ("1.30", "1.3.0", False), ("1.32", "1.320.0", False), ("2.13.0", "2.13.0+cpu", True), ("8.0", "8.0.RC3", True),
    ("8.0.RC3", "8.0.RC2", False), ("", "1.32.0", False), (" 1.32 ", "1.32.0", True), ("1.32.0.1", "1.32.0", False),
])
def test_version_pins_match_component_by_component(pinned: str, installed: str, ok: bool) -> None:
    assert version_matches(pinned, installed) is ok


def test_the_toolkit_check_holds_the_pin() -> None:
    fix = "install onnxruntime 1.3 or check out the branch for 1.32.1"
    assert toolkit_check("1.32.1", "", fix) == Check("toolkit.version", "ok",
                                                     "installed 1.32.1 (toolkit.version empty: any version)")
    assert toolkit_check("1.32.1", "1.32", fix) == Check("toolkit.version", "ok",
                                                         "installed 1.32.1 (toolkit.version '1.32')")
    failed = toolkit_check("1.32.1", "1.3", fix)
    assert failed == Check("toolkit.version", "FAIL", "installed 1.32.1, toolkit.version '1.3'", fix)
    assert failed.line() == f"FAIL  toolkit.version  installed 1.32.1, toolkit.version '1.3'  → fix: {fix}"


def test_threads_beyond_the_usable_cores_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "usable_cores", lambda: 4)
    assert threads_check(4, "torch.threads") == Check("threads", "ok", f"4 threads on 4 usable cores ({cpu_model()})")
    crowded = threads_check(5, "torch.threads")
    assert crowded == Check("threads", "FAIL", "5 threads on 4 usable cores (oversubscribed)",
                            "set torch.threads to 4 or less")


def test_usable_cores_are_the_affinity_not_the_host_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")
    assert usable_cores() == 64


def test_a_line_shows_the_fix_of_a_failed_check_only() -> None:
    assert Check.passed("atc", "/opt/atc").line() == "ok    atc              /opt/atc"
    assert Check.skipped("aclruntime", "set_env.sh").line() == "skip  aclruntime       needs set_env.sh"
    assert Check.failed("npu-smi", "absent", "install the driver").line() == (
        "FAIL  npu-smi          absent  → fix: install the driver")
    assert Check.failed("paths", "bad", "").line() == "FAIL  paths            bad"
