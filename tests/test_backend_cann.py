"""backends/ascend/cann.py: version files, npu-smi, driver, which CANN root a stage uses and the environment atc and
aclruntime run in, checked on the formats CANN's files and tools print and a fake CANN tree with two toolkits
(tests/fake_cann.py)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest
from fake_cann import (
    DRIVER_INFO,
    GOOD_PACKAGES,
    NPU_SMI_310P,
    NPU_SMI_910B,
    VENV_PACKAGES,
    VERSIONS,
    cann_tree,
    make_exe,
    other_roots,
    set_python_packages,
    source_in_shell,
)

from omzoo.backends.ascend import cann
from omzoo.backends.ascend.cann import (
    cann_environment,
    cann_version,
    cann_version_from,
    clean_environment,
    detect_environment,
    driver_version,
    driver_version_from,
    find_cann_home,
    parse_npu_smi,
    parse_version_info,
    python_info,
    python_problems,
    soc_from_npu_smi,
    with_python,
)
from omzoo.backends.base import DeviceProcess
from omzoo.core.errors import BackendUnavailable

pytestmark = pytest.mark.usefixtures("venv_bin")  # conftest.py: no real Ascend install is visible

# the version files' formats: a toolkit's install info, and version.cfg
TOOLKIT_INFO = """package_name=Ascend-cann-toolkit
version=8.0.RC3
innerversion=V100R001C19SPC001B123
arch=x86_64
path=/usr/local/Ascend/ascend-toolkit/8.0.RC3/x86_64-linux
"""
VERSION_CFG = "runtime_running_version=[7.3.0.1.231:8.0.RC2]\n"


# --------------------------------------------------------------------------- version files and npu-smi


def test_version_files() -> None:
    kv = parse_version_info(TOOLKIT_INFO)
    assert kv["package_name"] == "Ascend-cann-toolkit" and cann_version_from(kv) == "8.0.RC3"
    assert cann_version_from(parse_version_info(VERSION_CFG)) == "8.0.RC2"
    assert cann_version_from(parse_version_info("arch=x86_64\n")) is None
    assert driver_version_from(parse_version_info(DRIVER_INFO)) == "24.1.rc2"
    assert driver_version_from(parse_version_info("package_version=23.0.3\n")) == "23.0.3"
    assert parse_version_info("# comment\n\nnoequals\n a = b \n") == {"a": "b"}


def test_npu_smi_310p() -> None:
    parsed = parse_npu_smi(NPU_SMI_310P)
    assert parsed["version"] == "23.0.0"
    assert [(d["npu"], d["name"], d["health"]) for d in parsed["devices"]] == [("0", "310P3", "OK")]
    assert parsed["devices"][0]["chips"] == [{"chip": "0", "device": "0", "bus_id": "0000:3B:00.0",
                                               "aicore_pct": "7"}]
    assert parsed["processes"] == [DeviceProcess("npu:0", 4321, 1034.0, "python3")]
    assert soc_from_npu_smi(parsed) == "Ascend310P3"


def test_npu_smi_910b_and_garbage() -> None:
    parsed = parse_npu_smi(NPU_SMI_910B)
    assert [d["name"] for d in parsed["devices"]] == ["910B3", "910B3"]
    assert all(len(d["chips"]) == 1 for d in parsed["devices"]) and parsed["processes"] == []
    assert soc_from_npu_smi(parsed) == "Ascend910B3"
    empty = parse_npu_smi("dcmi module initialize failed. ret is -8005\n")
    assert empty == {"version": "unknown", "devices": [], "processes": []}
    assert soc_from_npu_smi(empty) is None


# The shape observed on 910B hosts: device table, then the process table (names may be empty).
NPU_SMI_910B_BUSY = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                 Version: 23.0.rc3                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.6        40                0    / 0             |
| 0                         | 0000:C1:00.0  | 12          0    / 0          40321/ 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 90.1        38                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3161 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 31337         | python3                  | 37709                   |
| 0       0                 | 777           |                          | 132                     |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""

NPU_SMI_310P_IDLE = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 22.0.0                       Version: 22.0.2                                                   |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 8       310P3                 | OK              | NA           42                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 0            1674 / 21527                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| No running processes found in NPU 8                                                                    |
+===============================+=================+======================================================+
"""


def test_npu_smi_process_table() -> None:
    """Every process row, ours included (the caller leaves its own pid out), each NPU's devices still read."""
    parsed = parse_npu_smi(NPU_SMI_910B_BUSY)
    assert parsed["processes"] == [DeviceProcess("npu:0", 31337, 37709.0, "python3"),
                                   DeviceProcess("npu:0", 777, 132.0, "")]
    assert [d["npu"] for d in parsed["devices"]] == ["0", "1"] and parsed["version"] == "23.0.rc3"
    assert [c["aicore_pct"] for d in parsed["devices"] for c in d["chips"]] == ["12", "0"]


def test_npu_smi_idle_and_variants() -> None:
    idle = parse_npu_smi(NPU_SMI_310P_IDLE)
    assert idle["processes"] == [] and [d["npu"] for d in idle["devices"]] == ["8"]
    other_header = "| NPU ID | Process id | Process name | Process memory(MB) |\n| 3 | 998 | python | 2 |\n"
    assert parse_npu_smi(other_header)["processes"] == [DeviceProcess("npu:3", 998, 2.0, "python")]
    reordered = "| Process id | NPU |\n| 998 | 5 |\n"
    assert parse_npu_smi(reordered)["processes"] == [DeviceProcess("npu:5", 998, None, "")]
    assert parse_npu_smi("| 0 0 | 1234 | python3 | 3056 |\n")["processes"] == []  # rows without a header
    assert parse_npu_smi("npu-smi: command failed\n")["processes"] == []


# --------------------------------------------------------------------------- detection


def test_detect_environment_absent_is_unknown(tmp_path: Path) -> None:
    env = detect_environment(environ={}, root=tmp_path / "none", npu_smi=str(tmp_path / "no-npu-smi"),
                             etc=tmp_path)
    assert set(env.values()) == {"unknown"}
    assert set(env) == {"cann_version", "cann_version_source", "driver_version", "driver_version_source",
                        "soc_version", "soc_version_source"}
    assert set(detect_environment().values()) == {"unknown"}  # the isolated host: module defaults


def test_detect_environment_reads_files_and_npu_smi(tmp_path: Path) -> None:
    home = tmp_path / "toolkit" / "latest"
    (home / f"{platform.machine()}-linux").mkdir(parents=True)
    (home / f"{platform.machine()}-linux" / "ascend_toolkit_install.info").write_text(TOOLKIT_INFO)
    root = tmp_path / "Ascend"
    (root / "driver").mkdir(parents=True)
    (root / "driver" / "version.info").write_text(DRIVER_INFO)
    npu_smi = make_exe(tmp_path / "npu-smi", f"print({NPU_SMI_310P!r})")
    env = detect_environment(environ={"ASCEND_TOOLKIT_HOME": str(home)}, root=root, npu_smi=str(npu_smi),
                             etc=tmp_path)
    assert env["cann_version"] == "8.0.RC3" and env["cann_version_source"].endswith("ascend_toolkit_install.info")
    assert env["driver_version"] == "24.1.rc2" and env["driver_version_source"].endswith("version.info")
    assert (env["soc_version"], env["soc_version_source"]) == ("Ascend310P3", "npu-smi info")


def test_detect_environment_fallbacks_and_never_raises(tmp_path: Path) -> None:
    root = tmp_path / "Ascend"
    (root / "ascend-toolkit" / "latest").mkdir(parents=True)
    (root / "ascend-toolkit" / "latest" / "version.cfg").write_text(VERSION_CFG)
    (root / "driver" / "version.info").mkdir(parents=True)  # a directory where a file should be
    bad = make_exe(tmp_path / "npu-smi", "import sys; print('garbage'); sys.exit(9)")
    env = detect_environment(environ={"ASCEND_TOOLKIT_HOME": str(tmp_path / "missing")}, root=root,
                             npu_smi=str(bad), etc=tmp_path)
    assert env["cann_version"] == "8.0.RC2" and env["cann_version_source"].endswith("version.cfg")
    assert env["driver_version"] == env["soc_version"] == "unknown"
    # npu-smi supplies the driver version when no file does
    npu_smi = make_exe(tmp_path / "npu-smi2", f"print({NPU_SMI_910B!r})")
    env = detect_environment(environ={}, root=root, npu_smi=str(npu_smi), etc=tmp_path)
    assert (env["driver_version"], env["driver_version_source"]) == ("24.1.rc2", "npu-smi info")


def test_detect_environment_home_path_install_info(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ascend_nnae_install.info").write_text("version=8.1.RC1\n")
    env = detect_environment(environ={"ASCEND_HOME_PATH": str(home)}, root=tmp_path / "none", etc=tmp_path,
                             npu_smi=str(tmp_path / "none"))
    assert env["cann_version"] == "8.1.RC1"


def test_driver_version_follows_etc_install_path(tmp_path: Path) -> None:
    """/etc/ascend_install.info holds only Driver_Install_Path_Param; the version is under that path."""
    elsewhere = tmp_path / "opt" / "Ascend"
    (elsewhere / "driver").mkdir(parents=True)
    (elsewhere / "driver" / "version.info").write_text("package_version=23.0.3\n")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "ascend_install.info").write_text(f"Driver_Install_Path_Param={elsewhere}\n")
    default = tmp_path / "Ascend"
    (default / "driver").mkdir(parents=True)
    (default / "driver" / "version.info").write_text(DRIVER_INFO)
    assert driver_version(default, etc) == ("23.0.3", str(elsewhere / "driver" / "version.info"))
    (etc / "ascend_install.info").write_text("Driver_Install_Path_Param=/nowhere\n")
    assert driver_version(default, etc)[0] == "24.1.rc2"  # falls back to the default root
    assert driver_version(tmp_path / "none", etc) == ("unknown", "unknown")


# --------------------------------------------------------------------------- which CANN root


def test_find_cann_home_order(tmp_path: Path) -> None:
    root = cann_tree(tmp_path)
    kits = root / "ascend-toolkit"
    chosen = kits / VERSIONS[0]
    assert find_cann_home(str(chosen), {"ASCEND_TOOLKIT_HOME": str(kits / "latest")}, root) == chosen
    assert find_cann_home(str(tmp_path / "missing"), {}, root) == tmp_path / "missing"  # reported, not replaced
    assert find_cann_home("", {"ASCEND_TOOLKIT_HOME": str(chosen)}, root) == chosen  # what the shell sourced
    assert find_cann_home("", {"ASCEND_HOME_PATH": str(chosen)}, root) == chosen
    assert find_cann_home("", {}, root) == kits / "latest"
    assert find_cann_home("", {}, tmp_path / "none") is None
    layout85 = tmp_path / "85"
    (layout85 / "cann-8.5.0").mkdir(parents=True)
    assert find_cann_home("", {}, layout85) == layout85 / "cann-8.5.0"
    (layout85 / "cann-8.5.1").mkdir()
    assert find_cann_home("", {}, layout85) is None  # two side by side: not guessed


def test_cann_version_per_root(tmp_path: Path) -> None:
    kits = cann_tree(tmp_path) / "ascend-toolkit"
    for version in VERSIONS:
        found, source = cann_version(kits / version)
        assert found == version and source.startswith(str(kits / version))
    assert cann_version(kits / "latest")[0] == VERSIONS[1]
    assert cann_version(tmp_path) == ("unknown", "unknown")


# --------------------------------------------------------------------------- the CANN environment


def test_clean_environment_drops_the_venv_and_a_sourced_cann(tmp_path: Path, venv_bin: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kits = cann_tree(tmp_path) / "ascend-toolkit"
    source_in_shell(monkeypatch, kits / "latest")
    env = dict(os.environ)
    env.update({"PYTHONHOME": "/x", "LD_LIBRARY_PATH": f"{kits / 'latest' / 'lib64'}:/usr/local/Ascend/driver/lib64",
                "ASCEND_OPP_PATH": str(kits / "latest" / "opp"), "ASCEND_GLOBAL_LOG_LEVEL": "3"})
    clean = clean_environment(env)
    path = clean["PATH"].split(os.pathsep)
    assert str(venv_bin) not in path and str(kits / "latest" / "bin") not in path
    assert {"VIRTUAL_ENV", "PYTHONHOME", "ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_OPP_PATH"}.isdisjoint(clean)
    assert clean["LD_LIBRARY_PATH"] == "/usr/local/Ascend/driver/lib64"  # the driver's entries stay
    assert clean["ASCEND_GLOBAL_LOG_LEVEL"] == "3"  # user settings stay
    assert "/usr/bin" in path or "/bin" in path
    # an ASCEND_HOME_PATH naming the whole Ascend root is not a toolkit: the driver's entries under it stay
    driver = str(kits.parent / "driver" / "lib64")
    assert clean_environment({"ASCEND_HOME_PATH": str(kits.parent), "LD_LIBRARY_PATH": driver, "PATH": "/bin"})[
        "LD_LIBRARY_PATH"] == driver


def test_cann_environment_of_each_root(tmp_path: Path, venv_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kits = cann_tree(tmp_path) / "ascend-toolkit"
    source_in_shell(monkeypatch, kits / "latest")  # the shell has 8.1; the branch asks for 8.0
    home = kits / VERSIONS[0]
    env = cann_environment(home)
    assert env["ASCEND_TOOLKIT_HOME"] == str(home) and env[cann.CANN_HOME_VAR] == os.path.realpath(home)
    path = env["PATH"].split(os.pathsep)
    assert path[0] == str(home / "bin") and str(venv_bin) not in path
    assert other_roots(env["PATH"], kits, home) == other_roots(env["LD_LIBRARY_PATH"], kits, home) == []
    assert other_roots(env["PYTHONPATH"], kits, home) == []
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(home / "lib64")
    assert "VIRTUAL_ENV" not in env and "CANN 8.0.RC3 environment set" not in "".join(env.values())
    out = subprocess.run(["atc", "--output=x"], env={**env, "FAKE_ATC_RECORD": str(tmp_path / "r")}, cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert "ATC run success" in out.stdout and '"version": "8.0.RC3"' in (tmp_path / "r").read_text()
    # the `latest` link is a root of its own, resolved to the version it points at
    assert cann_environment(kits / "latest")[cann.CANN_HOME_VAR] == os.path.realpath(kits / VERSIONS[1])


def test_cann_environment_refuses_a_script_that_selects_another_root(tmp_path: Path) -> None:
    kits = cann_tree(tmp_path) / "ascend-toolkit"
    with pytest.raises(BackendUnavailable, match=r"selects .*latest.*, not .*ascend-toolkit"):
        cann_environment(kits)  # ascend-toolkit/set_env.sh follows `latest`
    with pytest.raises(BackendUnavailable, match="no set_env.sh or bin/setenv.bash"):
        cann_environment(tmp_path)
    alt = kits / VERSIONS[0]
    (alt / "set_env.sh").rename(alt / "bin" / "setenv.bash")  # the per-version script of older layouts
    assert cann_environment(alt)["ASCEND_TOOLKIT_HOME"] == str(alt)


# --------------------------------------------------------------------------- atc's Python


def test_python_info_of_the_cann_environment(tmp_path: Path) -> None:
    home = cann_tree(tmp_path) / "ascend-toolkit" / VERSIONS[0]
    env = cann_environment(home)
    info = python_info(env)
    assert info["path"] == str(home / "bin" / "python3") and info["packages"] == GOOD_PACKAGES
    assert python_problems(info) == []
    set_python_packages(home, VENV_PACKAGES)
    assert python_problems(python_info(env)) == ["decorator missing", "scipy missing",
                                                 "numpy 2.4.0 (needs < 2 on Python < 3.13)",
                                                 "protobuf 7.34.0 (needs 3.20.x)"]
    assert python_problems(python_info({"PATH": str(tmp_path / "empty")})) == [
        "no python3 on the CANN environment's PATH"]


def test_python_problems_rules() -> None:
    info = {"path": "/p/python3", "version": "3.13.1", "packages": {**GOOD_PACKAGES, "numpy": "2.1.0"}}
    assert python_problems(info) == []  # numpy 2 is fine from Python 3.13
    assert python_problems({**info, "version": ""}) == ["/p/python3 did not report its version and packages"]


def test_a_named_python_is_what_atc_finds(tmp_path: Path) -> None:
    home = cann_tree(tmp_path) / "ascend-toolkit" / VERSIONS[0]
    other = tmp_path / "cann-py" / "bin" / "python3"
    make_exe(other, f'echo \'{{"executable": "{other}", "version": "3.9.18", "packages": {{}}}}\'\n',
             interpreter="/bin/sh")
    env = with_python(cann_environment(home), str(other), tmp_path / "shims")
    info = python_info(env)
    assert info["path"] == str(tmp_path / "shims" / "python3") and info["executable"] == str(other)
    assert info["version"] == "3.9.18"
    with pytest.raises(BackendUnavailable, match="acl.python"):
        with_python(env, str(tmp_path / "nope"), tmp_path / "shims2")
