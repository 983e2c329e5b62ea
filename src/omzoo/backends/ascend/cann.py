"""The host side of Ascend: which CANN install a stage uses, the environment it runs in, driver and SoC.

A branch names its CANN root (`acl.cann_home`); atc and aclruntime then run in the environment that root's
set_env.sh builds on top of this one, with the project venv taken off PATH (atc's operator compiler imports
numpy, protobuf, decorator, … from the first `python3` on PATH, and the venv's versions break it: numpy 2, a
protobuf newer than 3.20).
Everything here reads files and runs small commands; nothing imports CANN.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from omzoo.backends.base import DeviceProcess
from omzoo.core.errors import BackendUnavailable

UNKNOWN = "unknown"
#: where the driver and the default toolkits live, where the driver's install record is, the SoC tool
ASCEND_ROOT = Path("/usr/local/Ascend")
ETC = Path("/etc")
NPU_SMI = "npu-smi"
#: set in an environment built by cann_environment(): the realpath of the CANN root it was built from
CANN_HOME_VAR = "OMZOO_CANN_HOME"
#: what a sourced set_env.sh leaves behind; dropped before sourcing another root's (with their path entries)
_CANN_VARS = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_AICPU_PATH", "ASCEND_OPP_PATH", "TOOLCHAIN_HOME")
_PATH_VARS = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:")

#: atc's Python needs these distributions (the CANN 8.x install guide)
ATC_PYTHON_PACKAGES = ("numpy", "protobuf", "decorator", "sympy", "scipy", "cffi", "absl-py")
_PYTHON_PROBE = f"""\
import json, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
packages = {{}}
for name in {list(ATC_PYTHON_PACKAGES)!r}:
    try:
        packages[name] = metadata.version(name)
    except Exception:
        packages[name] = ""
print(json.dumps({{"executable": sys.executable, "version": ".".join(map(str, sys.version_info[:3])),
                  "packages": packages}}))
"""


# --------------------------------------------------------------------------- version files and npu-smi


def parse_version_info(text: str) -> dict[str, str]:
    """`key=value` lines of CANN `*_install.info`, `version.cfg`, the driver `version.info`, ascend_install.info."""
    kv: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            kv[key.strip()] = value.strip()
    return kv


def cann_version_from(kv: Mapping[str, str]) -> str | None:
    """`version=8.0.RC3`, or the part after ':' of `runtime_running_version=[7.3.0.1.231:8.0.RC2]`."""
    if kv.get("version"):
        return kv["version"]
    running = kv.get("runtime_running_version", "").strip("[] ")
    if ":" in running:
        return running.split(":", 1)[1].strip() or None
    return None


def driver_version_from(kv: Mapping[str, str]) -> str | None:
    """`Version=`, else `package_version=`; any case, as the keys are unconfirmed on a device."""
    lower = {k.lower(): v for k, v in kv.items()}
    return lower.get("version") or lower.get("package_version") or None


def _number(text: str) -> float | None:
    m = re.match(r"\d+(?:\.\d+)?", text)
    return float(m.group()) if m else None


def _cell(cells: list[str], columns: Mapping[str, int], key: str) -> str:
    i = columns.get(key, -1)
    return cells[i] if 0 <= i < len(cells) else ""


def parse_npu_smi(text: str) -> dict[str, Any]:
    """Parse the `npu-smi info` tables into {"version", "devices": [...], "processes": [DeviceProcess, ...]}.

    The layout is not documented. A device row (`NPU Name | Health | …`) is followed by one row per chip; chip rows
    are told apart by the PCIe bus id in their second cell, which works for 310P (`Chip Device`) and 910B (`Chip`)
    headers. The process table's header (`| NPU  Chip | Process id | Process name | Process memory(MB) |`, or
    `| NPU ID | ...`) names its columns, so they are found by name; then come one row per process (the name may be
    empty) or `| No running processes found in NPU 0 |`, and rows whose pid cell is not a number are skipped.
    """
    found = re.search(r"Version:\s*(\S+)", text)
    devices: list[dict[str, Any]] = []
    processes: list[DeviceProcess] = []
    section = ""
    columns: dict[str, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        lowered = [c.lower() for c in cells]
        if any("process id" in c for c in lowered):
            section = "processes"
            columns = {key: next((i for i, c in enumerate(lowered) if key in c), -1)
                       for key in ("npu", "process id", "process name", "memory")}
            continue
        first = cells[0].split()
        if first[:1] == ["NPU"] and "Name" in first:
            section = "devices"
        elif section == "processes":
            pid = _cell(cells, columns, "process id")
            if pid.isdigit():
                npu = (_cell(cells, columns, "npu").split() or ["?"])[0]
                processes.append(DeviceProcess(f"npu:{npu}", int(pid), _number(_cell(cells, columns, "memory")),
                                               _cell(cells, columns, "process name")))
        elif section == "devices" and len(cells) >= 3 and first and first[0] not in ("Chip", "npu-smi", "No"):
            if _BUS_ID.match(cells[1]) and devices:
                devices[-1]["chips"].append({
                    "chip": first[0],
                    "device": first[1] if len(first) > 1 else "",
                    "bus_id": cells[1],
                    "aicore_pct": (cells[2].split() or [""])[0],
                })
            elif len(first) >= 2:
                devices.append({"npu": first[0], "name": " ".join(first[1:]), "health": cells[1], "chips": []})
    return {"version": found.group(1) if found else UNKNOWN, "devices": devices, "processes": processes}


def soc_from_npu_smi(parsed: Mapping[str, Any]) -> str | None:
    """atc's --soc_version is "Ascend" + the Name column of the first device (310P3 → Ascend310P3)."""
    devices = parsed.get("devices") or []
    if not devices or not devices[0]["name"]:
        return None
    name = devices[0]["name"].replace(" ", "")
    return name if name.startswith("Ascend") else f"Ascend{name}"


def npu_smi_info(npu_smi: str | None = None) -> dict[str, Any] | None:
    """`npu-smi info`, parsed; None when the tool is absent, fails or hangs."""
    exe = shutil.which(npu_smi or NPU_SMI)
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_npu_smi(proc.stdout) if proc.returncode == 0 else None


# --------------------------------------------------------------------------- CANN root, versions, driver


def _read_kv(path: Path) -> dict[str, str]:
    return parse_version_info(path.read_text(encoding="utf-8", errors="replace"))


def find_cann_home(cann_home: str = "", environ: Mapping[str, str] | None = None,
                   root: Path | None = None) -> Path | None:
    """The CANN root a stage uses: `acl.cann_home` when set (even if missing: that is the error to report), else
    the one the shell's set_env.sh selected, else the default install; None when there is none.

    Several side-by-side `cann-*` installs without a choice are not guessed between.
    """
    if cann_home:
        return Path(cann_home).expanduser()
    env = os.environ if environ is None else environ
    root = ASCEND_ROOT if root is None else root
    candidates = [Path(env[k]) for k in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH") if env.get(k)]
    candidates += [root / "ascend-toolkit" / "latest", root / "cann"]
    versioned = sorted(root.glob("cann-*"))
    if len(versioned) == 1:
        candidates.append(versioned[0])
    return next((c for c in candidates if c.is_dir()), None)


def _version_files(home: Path, machine: str) -> Iterator[Path]:
    """A root's version files, most specific first: toolkit install info, any `ascend_*_install.info`, version.cfg."""
    yield home / f"{machine}-linux" / "ascend_toolkit_install.info"
    yield from sorted(home.glob("ascend_*_install.info"))
    yield from sorted(home.glob("*/ascend_*_install.info"))
    yield home / "version.cfg"


def cann_version(home: Path) -> tuple[str, str]:
    """The root's CANN version and the file it came from; ("unknown", "unknown") when no file says."""
    for path in _version_files(home, platform.machine()):
        with contextlib.suppress(OSError):
            if path.is_file() and (version := cann_version_from(_read_kv(path))):
                return version, str(path)
    return UNKNOWN, UNKNOWN


def driver_version(root: Path | None = None, etc: Path | None = None) -> tuple[str, str]:
    """The driver's version and its file: `<Driver_Install_Path_Param>/driver/version.info` from
    /etc/ascend_install.info (which holds only the install path), then `<root>/driver/version.info`."""
    root = ASCEND_ROOT if root is None else root
    etc = ETC if etc is None else etc
    candidates = []
    with contextlib.suppress(OSError):
        install = _read_kv(etc / "ascend_install.info").get("Driver_Install_Path_Param")
        if install:
            candidates.append(Path(install) / "driver" / "version.info")
    candidates.append(root / "driver" / "version.info")
    for path in candidates:
        with contextlib.suppress(OSError):
            if path.is_file() and (version := driver_version_from(_read_kv(path))):
                return version, str(path)
    return UNKNOWN, UNKNOWN


def detect_environment(
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
    npu_smi: str | None = None,
    etc: Path | None = None,
    cann_home: str = "",
) -> dict[str, str]:
    """CANN, driver and SoC versions with where each came from; "unknown" for anything absent. Never raises."""
    result = dict.fromkeys(
        ("cann_version", "cann_version_source", "driver_version", "driver_version_source",
         "soc_version", "soc_version_source"),
        UNKNOWN,
    )
    with contextlib.suppress(Exception):  # detection is best effort by contract
        home = find_cann_home(cann_home, environ, root)
        if home is not None:
            result["cann_version"], result["cann_version_source"] = cann_version(home)
    with contextlib.suppress(Exception):
        result["driver_version"], result["driver_version_source"] = driver_version(root, etc)
    with contextlib.suppress(Exception):
        parsed = npu_smi_info(npu_smi)
        if parsed is not None:
            if soc := soc_from_npu_smi(parsed):
                result["soc_version"], result["soc_version_source"] = soc, "npu-smi info"
            if result["driver_version"] == UNKNOWN and parsed["version"] != UNKNOWN:
                result["driver_version"], result["driver_version_source"] = parsed["version"], "npu-smi info"
    return result


# --------------------------------------------------------------------------- the CANN environment


def set_env_script(home: Path) -> Path | None:
    """The root's own environment script: `set_env.sh` (8.5 `cann-*` roots, the `ascend-toolkit` parent) or the
    per-version `bin/setenv.bash`."""
    return next((p for p in (home / "set_env.sh", home / "bin" / "setenv.bash") if p.is_file()), None)


def _is_toolkit(home: Path) -> bool:
    return set_env_script(home) is not None or (home / f"{platform.machine()}-linux").is_dir()


def _under(entry: str, roots: set[str]) -> bool:
    real = os.path.realpath(entry)
    return any(real == r or real.startswith(r + os.sep) for r in roots)


def clean_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the project venv (VIRTUAL_ENV, its bin/ on PATH) and without what a set_env.sh
    sourced in the shell added (its variables and the PATH/LD_LIBRARY_PATH/PYTHONPATH entries under its root)."""
    env = dict(os.environ if environ is None else environ)
    venvs = {env.pop("VIRTUAL_ENV", "")} | ({sys.prefix} if sys.prefix != sys.base_prefix else set())
    for var in ("VIRTUAL_ENV_PROMPT", "PYTHONHOME", CANN_HOME_VAR):
        env.pop(var, None)
    venv_bins = {os.path.realpath(os.path.join(v, "bin")) for v in venvs if v}
    cann_roots = {os.path.realpath(env[v]) for v in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")
                  if env.get(v) and _is_toolkit(Path(env[v]))}  # never a parent such as /usr/local/Ascend
    for var in _CANN_VARS:
        env.pop(var, None)
    for var in _PATH_VARS:
        kept = [e for e in env.get(var, "").split(os.pathsep)
                if e and os.path.realpath(e) not in venv_bins and not _under(e, cann_roots)]
        if kept or var == "PATH":
            env[var] = os.pathsep.join(kept)
        else:
            env.pop(var, None)
    return env


def cann_environment(home: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment atc and aclruntime run in: `home`'s set_env.sh sourced on top of clean_environment().

    Refuses a script that selects another root (the `ascend-toolkit/set_env.sh` beside versioned installs points
    at `latest`), so a branch always gets the root it names. Marks the result with CANN_HOME_VAR.
    """
    script = set_env_script(home)
    if script is None:
        raise BackendUnavailable(f"acl: {home} has no set_env.sh or bin/setenv.bash: set acl.cann_home to the CANN "
                                 "toolkit directory (e.g. /usr/local/Ascend/ascend-toolkit/8.0.RC3)")
    bash = shutil.which("bash") or "/bin/bash"
    try:  # the script's own output goes to stderr, so stdout holds only the environment
        proc = subprocess.run([bash, "-c", f"source {shlex.quote(str(script))} 1>&2; env -0"],
                              env=clean_environment(environ), capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackendUnavailable(f"acl: cannot source {script} with bash: {exc}") from exc
    env = dict(item.split("=", 1) for item in proc.stdout.decode(errors="replace").split("\0") if "=" in item)
    env.pop("_", None)
    real = os.path.realpath(home)
    selected = [env[v] for v in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH") if env.get(v)]
    if proc.returncode != 0 or not any(os.path.realpath(s) == real for s in selected):
        raise BackendUnavailable(
            f"acl: sourcing {script} selects {selected or 'no CANN root'} (exit {proc.returncode}), not {home}: set "
            f"acl.cann_home to the directory whose set_env.sh selects itself\n{proc.stderr.decode(errors='replace')}")
    env[CANN_HOME_VAR] = real
    return env


def with_python(env: Mapping[str, str], python: str, shim_dir: Path) -> dict[str, str]:
    """`env` with `python` first on PATH as `python3`/`python`, which atc's operator compiler runs.

    A wrapper script, not a link, so a venv interpreter named here still finds its own site-packages.
    """
    exe = shutil.which(python, path=env.get("PATH", ""))
    if exe is None:
        raise BackendUnavailable(f"acl: acl.python {python!r} is not an executable (absolute path, or a name on the "
                                 "CANN environment's PATH)")
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python3", "python"):
        shim = shim_dir / name
        shim.write_text(f'#!/bin/sh\nexec {shlex.quote(os.path.abspath(exe))} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    return {**env, "PATH": os.pathsep.join([str(shim_dir), env.get("PATH", "")])}


def python_info(env: Mapping[str, str]) -> dict[str, Any]:
    """The `python3` that `env`'s PATH gives atc: its path, the interpreter it runs, its version and the versions
    of CANN's packages ("" = missing); path "" when there is none."""
    exe = shutil.which("python3", path=env.get("PATH", ""))
    info: dict[str, Any] = {"path": exe or "", "executable": "", "version": "", "packages": {}}
    if exe is None:
        return info
    try:
        proc = subprocess.run([exe, "-c", _PYTHON_PROBE], env=dict(env), capture_output=True, text=True, timeout=60,
                              check=False)
        info.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        info["version"] = UNKNOWN
    return info


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else -1


def python_problems(info: Mapping[str, Any]) -> list[str]:
    """What CANN 8.x's atc would trip over in this Python: numpy < 2 (Python < 3.13), protobuf 3.20.x and the
    other packages present (the CANN 8.x install guide). Empty = fine."""
    if not info.get("path"):
        return ["no python3 on the CANN environment's PATH"]
    if info.get("version") in ("", UNKNOWN):
        return [f"{info['path']} did not report its version and packages"]
    packages: Mapping[str, str] = info.get("packages") or {}
    problems = [f"{name} missing" for name in ATC_PYTHON_PACKAGES if not packages.get(name)]
    numpy, protobuf = packages.get("numpy", ""), packages.get("protobuf", "")
    python = tuple(int(p) for p in str(info["version"]).split(".")[:2] if p.isdigit())
    if numpy and python < (3, 13) and _major(numpy) >= 2:
        problems.append(f"numpy {numpy} (needs < 2 on Python < 3.13)")
    if protobuf and not protobuf.startswith("3.20."):
        problems.append(f"protobuf {protobuf} (needs 3.20.x)")
    return problems
