"""core/provenance.py: the backend-neutral provenance (CPU, git revision) and its best-effort command runner."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omzoo.backends.base import backend_names
from omzoo.core import provenance
from omzoo.core.provenance import command_output, cpu_model, git_revision


def test_command_output_is_the_stripped_stdout() -> None:
    assert command_output([sys.executable, "-c", "print('  hello\\n')"]) == "hello"


@pytest.mark.parametrize("cmd", [
    [sys.executable, "-c", "print('partial'); raise SystemExit(3)"],  # fails: its output is not an answer
    ["/nonexistent/omzoo-no-such-tool"],  # missing
    [sys.executable, "-c", "import time; time.sleep(5)"],  # hangs past the timeout
])
def test_command_output_is_empty_when_the_command_cannot_answer(cmd: list[str]) -> None:
    assert command_output(cmd, timeout=0.5) == ""


def test_cpu_model_is_cpuinfos_model_name() -> None:
    try:
        names = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        names = []
    model = cpu_model()
    assert model and model == (names[0].strip() if names else model)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_is_the_short_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert git_revision() == ""  # outside a repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert git_revision() == ""  # no commit yet
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    short = git_revision()
    assert len(short) >= 7 and head.startswith(short)


def test_provenance_names_no_backend_and_no_accelerator_tool() -> None:
    """What an accelerator says about itself is its backend's to ask, never this module's."""
    source = Path(provenance.__file__).read_text()
    assert not re.search(r"\w+-smi|\bnvidia|\bnpu\b", source, re.IGNORECASE)
    assert [n for n in backend_names() if re.search(rf"\b{n}\b", source)] == []


def test_the_fingerprint_hash_names_the_content_not_its_order() -> None:
    from omzoo.core.provenance import fingerprint_hash

    a = {"runtime": "onnxruntime", "runtime_version": "1.32.0", "cpu": "AMD EPYC"}
    assert fingerprint_hash(a) == fingerprint_hash(dict(reversed(a.items()))) and len(fingerprint_hash(a)) == 16
    assert fingerprint_hash({**a, "runtime_version": "1.31.1"}) != fingerprint_hash(a)


def test_the_toolkit_file_is_written_only_when_it_changes(tmp_path: Path) -> None:
    """Its bytes (and so DVC's hash and the stages after it) stay as they were while the toolkit does."""
    import os

    from omzoo.core.provenance import FINGERPRINT, fingerprint_hash, read_fingerprint, write_fingerprint

    path, fp = tmp_path / "metrics" / "toolkit.json", {"runtime": "CANN", "runtime_version": "8.0.RC3"}
    assert write_fingerprint(path, fp) is True
    os.utime(path, (1, 1))
    assert write_fingerprint(path, dict(reversed(fp.items()))) is False and path.stat().st_mtime == 1
    assert read_fingerprint(path) == (fingerprint_hash(fp), fp)
    assert write_fingerprint(path, {**fp, "runtime_version": "8.1.RC1"}) is True and path.stat().st_mtime != 1
    assert read_fingerprint(path)[1]["runtime_version"] == "8.1.RC1"
    # a hand-edited file (the version changed, the hash not) or another file is refused, naming it
    path.write_text(path.read_text().replace("8.1.RC1", "8.0.RC3"))
    with pytest.raises(ValueError, match=rf"{path}: its {FINGERPRINT} .* does not match its content"):
        read_fingerprint(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"{path}: not a toolkit file"):
        read_fingerprint(path)
