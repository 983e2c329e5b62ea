"""`omzoo doctor`: one line per check, the fix on each failing one, exit 0 only when every check passes. The acl
checks run against the fake CANN tree of tests/fake_cann.py, never against what this machine has."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_cann import (
    NPU_SMI_310P,
    VENV_PACKAGES,
    VERSIONS,
    cann_tree,
    isolate_host,
    set_python_packages,
    toolkit,
    use_host,
)

from omzoo import cli
from omzoo.stages.doctor import usable_cores

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
ACL_CHECKS = ["backend", "cann root", "toolkit.version", "set_env.sh", "atc", "atc python", "aclruntime", "driver",
              "npu-smi", "device", "paths"]


@pytest.fixture(autouse=True)
def venv_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_host(monkeypatch, tmp_path)


def doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, **params: Any) -> tuple[int, dict]:
    """Run `omzoo doctor` on a params file with one model and these top-level sections replaced; return the exit
    status and {check: line}."""
    path = tmp_path / "repo" / "params.yaml"
    path.parent.mkdir(exist_ok=True)
    base = yaml.safe_load(PARAMS.read_text())
    base["models"] = {"ran92_cifar10": base["models"]["ran92_cifar10"]}
    path.write_text(yaml.safe_dump({**base, **params}))
    rc = cli.main(["doctor", "--params", str(path), *extra])
    out = capsys.readouterr().out.splitlines()
    lines = {line[6:22].strip(): line for line in out[:-1]}
    assert all(line[:4].strip() in ("ok", "FAIL", "skip") for line in out[:-1]), out
    assert out[-1].startswith(("onnxruntime:", "torch:", "acl:"))
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
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl", acl={"soc": "x"})
    assert rc == 1 and lines["backend"].startswith("FAIL") and "unknown options" in lines["backend"]


def test_toolkit_version_is_checked_for_every_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, toolkit={"version": "0.0"}, onnxruntime={"threads": 1})
    assert rc == 1 and lines["toolkit.version"].startswith("FAIL") and "'0.0'" in lines["toolkit.version"]


def test_torch_on_cpu_is_ready(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, backend="torch", torch={"device": "cpu", "threads": 1})
    assert rc == 0 and list(lines) == ["backend", "toolkit.version", "device", "threads"]
    assert "cpu" in lines["device"]


def test_acl_absent_is_said_line_by_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl", acl={"cann_home": ""})
    assert rc == 1 and list(lines) == ACL_CHECKS
    assert lines["cann root"].startswith("FAIL") and "none found" in lines["cann root"]
    assert "fix: install the CANN toolkit and set acl.cann_home" in lines["cann root"]
    for name in ("toolkit.version", "set_env.sh", "atc", "atc python", "aclruntime"):
        assert lines[name].startswith("skip") and "needs a CANN root" in lines[name]
    assert lines["driver"].startswith("FAIL") and "install the NPU driver" in lines["driver"]
    assert lines["npu-smi"].startswith("FAIL") and lines["device"].startswith("skip")
    assert lines["paths"].startswith("ok")
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl", acl={"cann_home": str(tmp_path / "nowhere")})
    assert rc == 1 and "acl.cann_home" in lines["cann root"] and "is not a directory" in lines["cann root"]


def test_acl_is_ready_on_a_complete_host(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host")
    home = root / "ascend-toolkit" / VERSIONS[0]
    rc, lines = doctor(tmp_path, capsys, backend="acl", toolkit={"version": "8.0"},
                       acl={"cann_home": str(home), "soc_version": "Ascend910B3"})
    assert rc == 0 and list(lines) == ACL_CHECKS, "\n".join(lines.values())
    assert all(line.startswith("ok") for line in lines.values())
    assert f"{home} (acl.cann_home): CANN 8.0.RC3" in lines["cann root"]
    assert "venv is off PATH" in lines["set_env.sh"] and lines["atc"].endswith(str(home / "bin" / "atc"))
    assert "numpy 1.26.4" in lines["atc python"] and "protobuf 3.20.3" in lines["atc python"]
    assert "free_resource present" in lines["aclruntime"]
    assert "24.1.rc2" in lines["driver"] and "SoC Ascend910B3" in lines["npu-smi"] and "idle" in lines["device"]


def test_acl_failures_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The venv's Python under atc, a broken aclruntime, the wrong SoC and toolkit, a busy NPU."""
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host", npu_smi=NPU_SMI_310P)
    home = root / "ascend-toolkit" / "9.0.0"
    toolkit(home, "9.0.0", aclruntime_error="libascendcl.so: cannot open shared object file")
    set_python_packages(home, VENV_PACKAGES)
    rc, lines = doctor(tmp_path, capsys, backend="acl", toolkit={"version": "8.0"},
                       acl={"cann_home": str(home), "soc_version": "Ascend910B3"})
    assert rc == 1
    assert lines["cann root"].startswith("ok")
    assert lines["toolkit.version"].startswith("FAIL") and "installed 9.0.0" in lines["toolkit.version"]
    python = lines["atc python"]
    assert python.startswith("FAIL") and str(home / "bin" / "python3") in python
    for needle in ("decorator missing", "numpy 2.4.0", "protobuf 7.34.0", "pip install 'numpy<2'", "acl.python"):
        assert needle in python
    assert lines["aclruntime"].startswith("FAIL") and "libascendcl.so" in lines["aclruntime"]
    assert "install the aclruntime and ais_bench wheels" in lines["aclruntime"]
    assert lines["npu-smi"].startswith("FAIL") and "set acl.soc_version to Ascend310P3" in lines["npu-smi"]
    assert lines["device"].startswith("FAIL") and "pid 4321 python3 on NPU 0" in lines["device"]


def test_acl_set_env_that_selects_another_root(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host")
    (root / "ascend-toolkit" / "version.cfg").write_text("runtime_running_version=[7.3.0.1.231:8.1.RC1]\n")
    rc, lines = doctor(tmp_path, capsys, backend="acl", acl={"cann_home": str(root / "ascend-toolkit")})
    assert rc == 1 and lines["set_env.sh"].startswith("FAIL") and "latest" in lines["set_env.sh"]
    assert all(lines[n].startswith("skip") for n in ("atc", "atc python", "aclruntime"))


def test_acl_path_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "my repo"
    repo.mkdir()
    (tmp_path / "repo").symlink_to(repo)  # the params file's directory resolves to a path with a space
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl")
    assert rc == 1 and lines["paths"].startswith("FAIL") and "' '" in lines["paths"]
    assert "ran92_cifar10.sim.onnx" in lines["paths"] and "ran92_cifar10_bs8.om" in lines["paths"]
    om = repo / "models" / "compiled" / "ran92_cifar10-1" / "ran92_cifar10_bs1.om"
    om.parent.mkdir(parents=True)
    om.write_bytes(b"om")
    os.chmod(om, 0o664)
    rc, lines = doctor(tmp_path, capsys, "--backend", "acl")
    assert "mode 0664" in lines["paths"]


def test_doctor_reads_the_working_directory_params(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`make doctor` passes no --params: ./params.yaml is read, and the paths checked are under ./models."""
    monkeypatch.chdir(PARAMS.parent)
    cli.main(["doctor", "--backend", "acl"])
    out = capsys.readouterr().out
    assert f"paths under {PARAMS.parent}" in out and out.rstrip().endswith("checks skipped")
