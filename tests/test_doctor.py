"""`omzoo doctor`: one line per check, the fix on each failing one, exit 0 only when every check passes, and one line
for every other registered backend. The checks are the backends' own: a backend registered by a test shows up
without doctor knowing it. The acl checks see no Ascend install (conftest.py `venv_bin`), whatever this machine has;
what each of them says is test_backend_host.py's."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from omzoo import cli
from omzoo.backends import base
from omzoo.backends.checks import usable_cores
from omzoo.core import paths
from omzoo.stages import doctor as doctor_module

pytestmark = pytest.mark.usefixtures("venv_bin")

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
OTHERS = "other backends ("


def run_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str,
               **params: Any) -> tuple[int, dict[str, str], dict[str, str]]:
    """Run `omzoo doctor` on a params file with one model and these top-level sections replaced; return the exit
    status, {check: line} of the backend checked in full, and {backend: line} of the others."""
    path = tmp_path / "repo" / "params.yaml"
    path.parent.mkdir(exist_ok=True)
    defaults = yaml.safe_load(PARAMS.read_text())
    defaults["models"] = {"ran92_cifar10": defaults["models"]["ran92_cifar10"]}
    path.write_text(yaml.safe_dump({**defaults, **params}))
    rc = cli.main(["doctor", "--params", str(path), *extra])
    full, header, rest = capsys.readouterr().out.partition(OTHERS)
    out = full.splitlines()
    lines = {line[6:22].strip(): line for line in out[:-1]}
    assert all(line[:4].strip() in ("ok", "FAIL", "skip") for line in out[:-1]), out
    checked = extra[extra.index("--backend") + 1] if "--backend" in extra else params.get("backend", "onnxruntime")
    verdict = f"{checked}: ready on this host" if rc == 0 else f"{checked}: NOT ready on this host: failed "
    assert out[-1].startswith(verdict), out[-1]
    assert bool(header) == ("--backend" not in extra)  # `--backend X` checks X alone
    others = rest.splitlines()[1:]
    assert all(line.startswith("  ") and ": " in line for line in others), others
    return rc, lines, {line.strip().split(":", 1)[0]: line.strip() for line in others}


def doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, **params: Any) -> tuple[int, dict]:
    """run_doctor's exit status and the lines of the backend checked in full."""
    rc, lines, _ = run_doctor(tmp_path, capsys, *extra, **params)
    return rc, lines


def test_onnxruntime_is_ready(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, onnxruntime={"providers": "auto", "threads": 1})
    assert rc == 0 and list(lines) == ["backend", "toolkit.version", "providers", "device", "threads"]
    assert all(line.startswith("ok") for line in lines.values())
    assert "CPUExecutionProvider" in lines["providers"] and "1 threads on" in lines["threads"]


def test_threads_beyond_the_usable_cores_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    too_many = usable_cores() + 1
    rc, lines = doctor(tmp_path, capsys, onnxruntime={"threads": too_many})
    assert rc == 1 and lines["threads"].startswith("FAIL") and "oversubscribed" in lines["threads"]
    assert f"set onnxruntime.threads to {usable_cores()} or less" in lines["threads"]


def test_a_missing_runtime_is_one_failing_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    rc, lines = doctor(tmp_path, capsys)
    assert rc == 1 and list(lines) == ["backend", "runtime"] and "fix: install onnxruntime" in lines["runtime"]


def test_bad_options_fail_the_backend_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An option the backend refuses, a bad value or a misspelt key, is the failing `backend` line, naming it (a
    backend checks its own section when it is made)."""
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl", acl={"log": "loud"})
    assert rc == 1 and list(lines) == ["backend"] and lines["backend"].startswith("FAIL")
    assert "acl: log must be one of" in lines["backend"]
    assert "fix: fix the acl section of params.yaml" in lines["backend"]
    path = tmp_path / "repo" / "params.yaml"
    path.write_text(path.read_text().replace("log: loud", "soc: x"))  # a misspelt key: refused when params load
    assert cli.main(["doctor", "--params", str(path), "--backend", "acl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("omzoo doctor: error:") and "acl: unknown key(s) ['soc']" in err[0], err


def test_toolkit_version_is_checked_for_every_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, toolkit={"version": "0.0"}, onnxruntime={"threads": 1})
    assert rc == 1 and lines["toolkit.version"].startswith("FAIL") and "'0.0'" in lines["toolkit.version"]


def test_torch_on_cpu_is_ready(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, backend="torch", torch={"device": "cpu", "threads": 1})
    assert rc == 0 and list(lines) == ["backend", "toolkit.version", "device", "threads"]
    assert "cpu" in lines["device"]


def test_the_paths_checked_are_under_the_params_files_real_directory(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """doctor holds the backend to the files under the params file's directory, symlinks resolved (the acl path
    rules themselves: test_backend_host.py)."""
    repo = tmp_path / "my repo"
    repo.mkdir()
    (tmp_path / "repo").symlink_to(repo)  # the params file's directory resolves to a path with a space
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl")
    assert rc == 1 and lines["paths"].startswith("FAIL") and "' '" in lines["paths"]
    assert f"{repo / paths.simplified('ran92_cifar10')}:" in lines["paths"]


def test_doctor_reads_the_working_directory_params(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`make doctor` passes no --params: ./params.yaml is read, and the paths checked are under ./models."""
    monkeypatch.chdir(PARAMS.parent)
    cli.main(["doctor", "--backend", "acl"])
    out = capsys.readouterr().out
    assert f"paths under {PARAMS.parent}" in out and out.rstrip().endswith("checks skipped")


def test_every_other_backend_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On this CPU host: the configured backend in full, then acl absent and torch on the CPU, each in one line; the
    branch's toolkit pin is the configured backend's, so the others are not held to it."""
    import torch

    rc, lines, others = run_doctor(tmp_path, capsys, toolkit={"version": "0.0"}, onnxruntime={"threads": 1})
    assert rc == 1 and lines["toolkit.version"].startswith("FAIL")  # the others never change the exit status
    assert sorted(others) == [n for n in base.backend_names() if n != "onnxruntime"] == ["acl", "torch"]
    assert others["acl"].startswith("acl: NOT ready on this host: cann root: none found")
    assert others["torch"].startswith("torch: ready on this host (")
    if not torch.cuda.is_available():
        assert others["torch"].startswith("torch: ready on this host (cpu (") and "sees no CUDA GPU" in others["torch"]
    _, _, others = run_doctor(tmp_path, capsys, backend="acl")
    assert sorted(others) == ["onnxruntime", "torch"] and others["onnxruntime"].startswith("onnxruntime: ready")


def test_a_registered_backend_shows_its_own_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/toy/backend.py, registered with the one registry line: doctor prints its checks, knowing nothing of it."""
    monkeypatch.setitem(base._BACKENDS, "toy", ("toy.backend", "ToyBackend"))
    rc, lines, others = run_doctor(tmp_path, capsys, backend="toy", toy={}, toolkit={"version": "0.1"})
    assert rc == 0 and list(lines) == ["backend", "toolkit.version", "toyrt plugin", "device"]
    assert "toy (configured)" in lines["backend"] and "installed 0.1.0" in lines["toolkit.version"]
    assert lines["toyrt plugin"].startswith("ok") and "toyrt_plugin 9.9 loaded" in lines["toyrt plugin"]
    assert "toy" not in others and sorted(others) == ["acl", "onnxruntime", "torch"]
    rc, lines, others = run_doctor(tmp_path, capsys, "--backend", "toy", toolkit={"version": "2.0"})
    assert rc == 1 and "toy (asked)" in lines["backend"] and lines["toolkit.version"].startswith("FAIL")
    assert "fix: install toy 2.0" in lines["toolkit.version"]
    _, _, others = run_doctor(tmp_path, capsys, onnxruntime={"threads": 1})
    assert others["toy"] == "toy: ready on this host (toy device)"


def test_doctor_names_no_backend() -> None:
    """doctor.py knows backends only through the interface: no backend module imported, no backend's name in it."""
    source = Path(doctor_module.__file__).read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("omzoo.backends")}
    assert imported == {"omzoo.backends.base", "omzoo.backends.checks"}
    assert not any(isinstance(node, ast.Import) and any(a.name.startswith("omzoo.backends") for a in node.names)
                   for node in ast.walk(ast.parse(source)))
    named = [n for n in base.backend_names() if re.search(rf"\b{re.escape(n)}\b", source, re.IGNORECASE)]
    assert named == [], f"doctor.py names the backend(s) {named}"
    assert len(source.splitlines()) < 300
