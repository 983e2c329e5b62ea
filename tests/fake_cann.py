"""Shared by the Ascend tests (test_backend_cann.py, _acl, _host, test_doctor.py): a fake Ascend host in a temporary
directory.

No CANN, driver or NPU exists where these tests run, and on a real Ascend host the tests must not see the real
ones: `isolate_host` (conftest.py's `venv_bin`) points omzoo's host paths (cann.ASCEND_ROOT, ETC, NPU_SMI) at
empty places and clears what a sourced set_env.sh leaves in the environment; `cann_tree` builds toolkits side by
side, each with its version file, set_env.sh, a recording fake `atc`, a fake `python3` (the Python atc would run:
it answers omzoo's probe with the packages of python.json and runs any script with this interpreter), a fake
`aclruntime` and a recording fake `amct_onnx` (AMCT for ONNX, int8).
"""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from pathlib import Path

import pytest

from omzoo.backends.ascend import cann

VERSIONS = ("8.0.RC3", "8.1.RC1")
#: what CANN 8.x wants in atc's Python (its install guide), and what a project venv typically has instead
GOOD_PACKAGES = {"numpy": "1.26.4", "protobuf": "3.20.3", "decorator": "5.1.1", "sympy": "1.12", "scipy": "1.11.4",
                 "cffi": "1.16.0", "absl-py": "2.1.0"}
VENV_PACKAGES = {**GOOD_PACKAGES, "numpy": "2.4.0", "protobuf": "7.34.0", "decorator": "", "scipy": ""}

# No documented npu-smi sample exists; these follow the usual 310P and 910B layouts (unverified).
NPU_SMI_310P = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                                   Version: 23.0.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310P3                 | OK              | NA           46                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 7            1782 / 21527                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| 0       0                     | 4321            | python3                  | 1034                      |
+===============================+=================+======================================================+
"""
NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.rc2                 Version: 24.1.rc2                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.6        40                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 90.1        39                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""
# Driver key names are unconfirmed on a device; this is the commonly seen shape.
DRIVER_INFO = "Version=24.1.rc2\nascendhal_version=7.35.19\npackage_version=24.1.rc2\n"

#: records each call (argv, working directory, the environment it ran in, its own version) as one JSON line
FAKE_ATC = """\
import hashlib, json, os, pathlib, shutil, sys
out = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--output="))
model = pathlib.Path(next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--model=")), "-"))
python3 = shutil.which("python3")
with open(os.environ["FAKE_ATC_RECORD"], "a") as f:
    f.write(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "version": VERSION,
                        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest() if model.is_file() else None,
                        "plog": os.environ.get("ASCEND_PROCESS_LOG_PATH"), "path": os.environ.get("PATH", ""),
                        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
                        "virtual_env": os.environ.get("VIRTUAL_ENV"), "python3": python3,
                        "python3_text": pathlib.Path(python3).read_text() if python3 else ""}) + "\\n")
pathlib.Path("fusion_result.json").write_text("{}")  # a side file in the working directory
mode = os.environ.get("FAKE_ATC_MODE", "ok")
print("ATC start working now, please wait for a moment.")
if mode == "fail":
    print("ATC run failed, Please check the detail log, Try 'atc --help' for more information")
    print(os.environ.get("FAKE_ATC_ERROR", "E10016: Input shape name [foo] is not found in the model"))
    print("fake atc: the parser gave up", file=sys.stderr)
    sys.exit(3)
if mode != "no_om":
    pathlib.Path(out + ".om").write_bytes(b"fake-om")
    os.chmod(out + ".om", 0o664)  # what a group-writable umask gives; compile must not leave it so
if mode != "quiet":
    print("ATC run success, welcome to the next use.")
"""

#: imported by the child process that aclruntime runs in: records that environment, then finds no NPU
FAKE_ACLRUNTIME = """\
import json, os, sys, types
VERSION = {version!r}
{failure}

def _record(event):
    with open(os.environ["FAKE_ACLRUNTIME_RECORD"], "a") as f:
        f.write(json.dumps({{"event": event, "version": VERSION, "path": os.environ.get("PATH", ""),
                            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
                            "virtual_env": os.environ.get("VIRTUAL_ENV"),
                            "cann_home": os.environ.get("OMZOO_CANN_HOME")}}) + "\\n")


def session_options():
    return types.SimpleNamespace(loop=1, log_level=2, acl_json_path="")


class InferenceSession:
    def __init__(self, path, device, options):
        _record("session")
        raise RuntimeError("fake aclruntime: no NPU here")

    def free_resource(self):
        pass

    @staticmethod
    def finalize():
        pass
"""


#: AMCT for ONNX's PTQ calls (create_quant_config, quantize_model, save_model), each recorded as one JSON line in
#: $FAKE_AMCT_RECORD with its arguments and what it found; the models are copies of the input, the deploy model
#: marked so that the test can tell it from the input. AMCT_SO is the session options the calibration run gets.
FAKE_AMCT = """\
import hashlib, json, os, shutil

import onnx
import onnxruntime

__version__ = "fake-amct-" + {version!r}
AMCT_SO = onnxruntime.SessionOptions()


def _record(call, **args):
    with open(os.environ["FAKE_AMCT_RECORD"], "a") as f:
        f.write(json.dumps({{"call": call, "version": __version__, "cwd": os.getcwd(), **args}}) + "\\n")


def create_quant_config(config_file, model_file, skip_layers=None, batch_num=1, activation_offset=True,
                        config_defination=None, updated_model=None):
    _record("create_quant_config", config_file=config_file, model_file=model_file, skip_layers=skip_layers,
            batch_num=batch_num, activation_offset=activation_offset)
    with open(config_file, "w") as f:
        json.dump({{"version": 1, "batch_num": batch_num, "activation_offset": activation_offset}}, f)


def quantize_model(config_file, model_file, modified_onnx_file, record_file):
    _record("quantize_model", config_file=config_file, model_file=model_file, modified_onnx_file=modified_onnx_file,
            record_file=record_file, config=json.load(open(config_file)))
    shutil.copyfile(model_file, modified_onnx_file)
    open(record_file, "w").close()  # filled by the calibration run on a real AMCT


def save_model(modified_onnx_file, record_file, save_path):
    if os.environ.get("FAKE_AMCT_MODE") == "fail":
        raise RuntimeError("fake amct: the record holds no scale for layer conv1")
    model = onnx.load(modified_onnx_file)
    onnx.helper.set_model_props(model, {{"amct": "deploy"}})
    deploy = save_path + "_deploy_model.onnx"
    onnx.save(model, deploy)
    shutil.copyfile(modified_onnx_file, save_path + "_fake_quant_model.onnx")
    _record("save_model", modified_onnx_file=modified_onnx_file, record_file=record_file, save_path=save_path,
            record_exists=os.path.isfile(record_file), deploy=deploy,
            deploy_sha256=hashlib.sha256(open(deploy, "rb").read()).hexdigest(),
            batches=sorted(n for n in os.listdir(os.path.dirname(save_path)) if n.endswith(".npy")))
"""


def make_exe(path: Path, body: str, interpreter: str = sys.executable) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{interpreter}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def set_python_packages(home: Path, packages: dict[str, str], version: str = "3.10.12") -> None:
    """What the toolkit's fake `python3` reports about itself."""
    (home / "python.json").write_text(json.dumps({"executable": "/usr/bin/python3.10", "version": version,
                                                  "packages": packages}))


def toolkit(home: Path, version: str, *, aclruntime_error: str = "") -> Path:
    """One CANN toolkit directory, as under /usr/local/Ascend/ascend-toolkit/<version>/."""
    (home / f"{platform.machine()}-linux").mkdir(parents=True)
    (home / f"{platform.machine()}-linux" / "ascend_toolkit_install.info").write_text(
        f"package_name=Ascend-cann-toolkit\nversion={version}\narch={platform.machine()}\n")
    (home / "lib64").mkdir()
    (home / "set_env.sh").write_text(
        f"export ASCEND_TOOLKIT_HOME={home}\n"
        "export ASCEND_HOME_PATH=$ASCEND_TOOLKIT_HOME\n"
        "export ASCEND_OPP_PATH=$ASCEND_TOOLKIT_HOME/opp\n"
        "export PATH=$ASCEND_TOOLKIT_HOME/bin:$PATH\n"
        "export LD_LIBRARY_PATH=$ASCEND_TOOLKIT_HOME/lib64:$LD_LIBRARY_PATH\n"
        "export PYTHONPATH=$ASCEND_TOOLKIT_HOME/python/site-packages:$PYTHONPATH\n"
        f"echo 'CANN {version} environment set'\n")
    make_exe(home / "bin" / "atc", f"VERSION = {version!r}\n{FAKE_ATC}")
    make_exe(home / "bin" / "python3", f'if [ "$1" = "-c" ]; then cat "{home}/python.json"; '
             f'else exec "{sys.executable}" "$@"; fi\n', interpreter="/bin/sh")
    set_python_packages(home, GOOD_PACKAGES)
    site = home / "python" / "site-packages"
    site.mkdir(parents=True)
    failure = f"raise ImportError({aclruntime_error!r})" if aclruntime_error else ""
    (site / "aclruntime.py").write_text(FAKE_ACLRUNTIME.format(version=version, failure=failure))
    (site / "amct_onnx").mkdir()
    (site / "amct_onnx" / "__init__.py").write_text(FAKE_AMCT.format(version=version))
    return home


def cann_tree(base: Path, latest: str = VERSIONS[1]) -> Path:
    """An Ascend root with two toolkits side by side, `latest` a link, the top-level set_env.sh that follows it,
    and a driver whose path /etc/ascend_install.info names. Returns the Ascend root."""
    root = base / "Ascend"
    kits = root / "ascend-toolkit"
    for version in VERSIONS:
        toolkit(kits / version, version)
    (kits / "latest").symlink_to(latest)
    (kits / "set_env.sh").write_text(f"export ASCEND_TOOLKIT_HOME={kits / 'latest'}\n"
                                     "export ASCEND_HOME_PATH=$ASCEND_TOOLKIT_HOME\n"
                                     "export PATH=$ASCEND_TOOLKIT_HOME/bin:$PATH\n")
    (root / "driver").mkdir()
    (root / "driver" / "version.info").write_text(DRIVER_INFO)
    (base / "etc").mkdir()
    (base / "etc" / "ascend_install.info").write_text(f"Driver_Install_Path_Param={root}\n")
    return root


def use_host(monkeypatch: pytest.MonkeyPatch, base: Path, npu_smi: str = NPU_SMI_910B) -> None:
    """Make the fake tree under `base` this host's: its Ascend root, /etc and an npu-smi printing `npu_smi`."""
    monkeypatch.setattr(cann, "ASCEND_ROOT", base / "Ascend")
    monkeypatch.setattr(cann, "ETC", base / "etc")
    monkeypatch.setattr(cann, "NPU_SMI", str(make_exe(base / "npu-smi", f"print({npu_smi!r})")))


def isolate_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Ascend install, driver or npu-smi whatever this machine has; a project venv first on PATH, as the
    Makefile sets it. Returns the venv's bin directory."""
    empty = tmp_path / "no-ascend"
    monkeypatch.setattr(cann, "ASCEND_ROOT", empty / "Ascend")
    monkeypatch.setattr(cann, "ETC", empty / "etc")
    monkeypatch.setattr(cann, "NPU_SMI", str(empty / "npu-smi"))
    for var in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_OPP_PATH", "ASCEND_AICPU_PATH", "TOOLCHAIN_HOME",
                "ASCEND_PROCESS_LOG_PATH", cann.CANN_HOME_VAR, "OMZOO_RERUN", "FAKE_ATC_MODE", "FAKE_AMCT_MODE"):
        monkeypatch.delenv(var, raising=False)
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    monkeypatch.setenv("VIRTUAL_ENV", str(venv_bin.parent))
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")]))
    return venv_bin


def source_in_shell(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """What `source <home>/set_env.sh` in the user's shell leaves behind."""
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    monkeypatch.setenv("ASCEND_HOME_PATH", str(home))
    for var, sub in (("PATH", "bin"), ("LD_LIBRARY_PATH", "lib64"), ("PYTHONPATH", "python/site-packages")):
        monkeypatch.setenv(var, os.pathsep.join(p for p in (str(home / sub), os.environ.get(var, "")) if p))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def other_roots(entries: str, ascend: Path, home: Path) -> list[str]:
    """The entries of a PATH-like value that lie in the fake tree under `ascend` but outside `home` (only the fake
    tree is looked at: a real CANN sourced in the shell running the tests is not this test's business)."""
    tree, own = str(ascend) + os.sep, str(home) + os.sep
    return [e for e in entries.split(os.pathsep) if (e + os.sep).startswith(tree) and not (e + os.sep).startswith(own)]
