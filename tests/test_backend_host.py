"""backends/ascend/host.py: can this host run acl? The checks `omzoo doctor --backend acl` prints, always in the
same order, against the fake CANN tree of tests/fake_cann.py, never against what this machine has: what is
missing, skipped because of it, what to do about each failure, and atc's and aclruntime's path rules on every file
the pipeline will write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fake_cann import NPU_SMI_310P, VENV_PACKAGES, VERSIONS, cann_tree, set_python_packages, toolkit, use_host

from omzoo.backends.ascend.acl import AclBackend
from omzoo.backends.ascend.host import host_checks
from omzoo.backends.checks import HostPlan

pytestmark = pytest.mark.usefixtures("venv_bin")

MODEL = "ran92_cifar10"
CHECKS = ["cann root", "toolkit.version", "set_env.sh", "atc", "atc python", "aclruntime", "driver", "npu-smi",
          "device", "paths"]


def lines(root: Path, toolkit_version: str = "", **options: Any) -> dict[str, str]:
    """{check: the line doctor prints} for acl with these options, against the pipeline's files under `root` (RAN-92
    at batch sizes 1 and 8)."""
    plan = HostPlan(toolkit_version=toolkit_version, root=root, models=(MODEL,), batch_sizes=(1, 8))
    checks = host_checks(AclBackend(options), plan)
    assert [c.name for c in checks] == CHECKS
    return {c.name: c.line() for c in checks}


def test_acl_absent_is_said_line_by_line(tmp_path: Path) -> None:
    found = lines(tmp_path / "repo", cann_home="")
    assert found["cann root"].startswith("FAIL") and "none found" in found["cann root"]
    assert "fix: install the CANN toolkit and set acl.cann_home" in found["cann root"]
    for name in ("toolkit.version", "set_env.sh", "atc", "atc python", "aclruntime"):
        assert found[name].startswith("skip") and "needs a CANN root" in found[name]
    assert found["driver"].startswith("FAIL") and "install the NPU driver" in found["driver"]
    assert found["npu-smi"].startswith("FAIL") and found["device"].startswith("skip")
    assert found["paths"].startswith("ok")
    found = lines(tmp_path / "repo", cann_home=str(tmp_path / "nowhere"))
    assert "acl.cann_home" in found["cann root"] and "is not a directory" in found["cann root"]


def test_acl_is_ready_on_a_complete_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host")
    home = root / "ascend-toolkit" / VERSIONS[0]
    found = lines(tmp_path / "repo", "8.0", cann_home=str(home), soc_version="Ascend910B3")
    assert all(line.startswith("ok") for line in found.values()), "\n".join(found.values())
    assert f"{home} (acl.cann_home): CANN 8.0.RC3" in found["cann root"]
    assert "venv is off PATH" in found["set_env.sh"] and found["atc"].endswith(str(home / "bin" / "atc"))
    assert "numpy 1.26.4" in found["atc python"] and "protobuf 3.20.3" in found["atc python"]
    assert "free_resource present" in found["aclruntime"]
    assert "24.1.rc2" in found["driver"] and "SoC Ascend910B3" in found["npu-smi"] and "idle" in found["device"]


def test_acl_failures_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The venv's Python under atc, a broken aclruntime, the wrong SoC and toolkit, a busy NPU."""
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host", npu_smi=NPU_SMI_310P)
    home = root / "ascend-toolkit" / "9.0.0"
    toolkit(home, "9.0.0", aclruntime_error="libascendcl.so: cannot open shared object file")
    set_python_packages(home, VENV_PACKAGES)
    found = lines(tmp_path / "repo", "8.0", cann_home=str(home), soc_version="Ascend910B3")
    assert found["cann root"].startswith("ok")
    assert found["toolkit.version"].startswith("FAIL") and "installed 9.0.0" in found["toolkit.version"]
    python = found["atc python"]
    assert python.startswith("FAIL") and str(home / "bin" / "python3") in python
    for needle in ("decorator missing", "numpy 2.4.0", "protobuf 7.34.0", "pip install 'numpy<2'", "acl.python"):
        assert needle in python
    assert found["aclruntime"].startswith("FAIL") and "libascendcl.so" in found["aclruntime"]
    assert "install the aclruntime and ais_bench wheels" in found["aclruntime"]
    assert found["npu-smi"].startswith("FAIL") and "set acl.soc_version to Ascend310P3" in found["npu-smi"]
    assert found["device"].startswith("FAIL") and "pid 4321 python3 on NPU 0" in found["device"]


def test_acl_set_env_that_selects_another_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = cann_tree(tmp_path / "host")
    use_host(monkeypatch, tmp_path / "host")
    (root / "ascend-toolkit" / "version.cfg").write_text("runtime_running_version=[7.3.0.1.231:8.1.RC1]\n")
    found = lines(tmp_path / "repo", cann_home=str(root / "ascend-toolkit"))
    assert found["set_env.sh"].startswith("FAIL") and "latest" in found["set_env.sh"]
    assert all(found[n].startswith("skip") and "needs set_env.sh" in found[n] for n in ("atc", "atc python",
                                                                                          "aclruntime"))


def test_acl_path_rules(tmp_path: Path) -> None:
    """Every ONNX and .om path of the plan, each named with the rule it breaks; an existing .om by its mode too."""
    repo = tmp_path / "my repo"
    paths_line = lines(repo)["paths"]
    assert paths_line.startswith("FAIL") and "' '" in paths_line
    assert f"{MODEL}.sim.onnx" in paths_line and f"{MODEL}/{MODEL}-8-fp32/{MODEL}-8-fp32.om" in paths_line
    om = tmp_path / "repo" / "models" / "compiled" / MODEL / f"{MODEL}-1-fp32" / f"{MODEL}-1-fp32.om"
    om.parent.mkdir(parents=True)
    om.write_bytes(b"om")
    os.chmod(om, 0o664)
    paths_line = lines(tmp_path / "repo")["paths"]
    assert paths_line.startswith("FAIL") and f"{om}:" in paths_line and "mode 0664" in paths_line
    assert str(tmp_path / "repo" / "models" / "onnx") not in paths_line  # the other paths follow the rules
