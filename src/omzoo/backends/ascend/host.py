"""Can this host run acl? The checks `omzoo doctor` prints for it, in the order a setup goes: the CANN root and its
version, its set_env.sh environment, atc and the Python atc runs, aclruntime in that environment, the driver,
npu-smi and the SoC, whether the NPUs are idle, and the path rules of atc and aclruntime on every file the pipeline
will write (the README's Ascend section). A check that needs a failed one is skipped, never guessed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omzoo.backends.ascend import cann
from omzoo.backends.ascend.atc import om_path, om_problems, path_problems
from omzoo.backends.checks import DEVICE, Check, HostPlan, toolkit_check
from omzoo.core import paths
from omzoo.core.errors import BackendUnavailable

if TYPE_CHECKING:
    from omzoo.backends.ascend.acl import AclBackend

_ACLRUNTIME_PROBE = """\
import json, aclruntime
try:
    from importlib import metadata
    version = metadata.version("aclruntime")
except Exception:
    version = "unknown"
print(json.dumps({"version": version, "free_resource": hasattr(aclruntime.InferenceSession, "free_resource")}))
"""
_CANN_PACKAGES = "pip install 'numpy<2' 'protobuf==3.20.*' decorator sympy scipy cffi absl-py"
#: what needs the CANN environment, skipped when there is none
_IN_ENVIRONMENT = ("atc", "atc python", "aclruntime")


def host_checks(backend: AclBackend, plan: HostPlan) -> list[Check]:
    """Every acl check for `backend`'s options against `plan` (the toolkit pin, the pipeline's files)."""
    options = backend.options
    host = [*_device_checks(options), path_check(plan)]  # what needs no CANN root
    try:
        home = backend.cann_home()
    except BackendUnavailable:
        configured = str(options.get("cann_home") or "")
        root = Check.failed("cann root", f"acl.cann_home {configured!r} is not a directory" if configured else
                            "none found: acl.cann_home empty, $ASCEND_TOOLKIT_HOME unset, nothing under "
                            f"{cann.ASCEND_ROOT}", "install the CANN toolkit and set acl.cann_home to its version "
                            "directory, e.g. /usr/local/Ascend/ascend-toolkit/8.0.RC3")
        skipped = [Check.skipped(n, "a CANN root") for n in ("toolkit.version", "set_env.sh", *_IN_ENVIRONMENT)]
        return [root, *skipped, *host]
    version, source = cann.cann_version(home)
    how = "acl.cann_home" if options.get("cann_home") else "found; set acl.cann_home to pin it"
    expected = plan.toolkit_version
    checks = [
        Check.passed("cann root", f"{home} ({how}): CANN {version} from {source}") if version != cann.UNKNOWN else
        Check.failed("cann root", f"{home} has no version file", "point acl.cann_home at a CANN toolkit version "
                     "directory (holding <arch>-linux/ascend_toolkit_install.info)"),
        toolkit_check(version, expected, f"check out the branch for CANN {version}, or set acl.cann_home to a "
                                         f"CANN {expected} install"),
    ]
    try:
        env = backend.process_env()
    except BackendUnavailable as exc:
        checks.append(Check.failed("set_env.sh", str(exc).splitlines()[0], "point acl.cann_home at a directory "
                                   "whose set_env.sh (or bin/setenv.bash) selects that directory"))
        return [*checks, *(Check.skipped(n, "set_env.sh") for n in _IN_ENVIRONMENT), *host]
    checks.append(Check.passed("set_env.sh", f"{cann.set_env_script(home)} selects {home}; the venv is off PATH"))
    atc = shutil.which(str(options.get("atc") or "atc"), path=env.get("PATH", ""))
    checks.append(Check.passed("atc", atc) if atc else
                  Check.failed("atc", f"{options.get('atc')!r} not on the CANN environment's PATH",
                               f"install the CANN toolkit into {home} (atc is in its bin/), or set acl.atc"))
    return [*checks, _python_check(env, str(options.get("python") or "")), _aclruntime_check(env), *host]


def _python_check(env: dict[str, str], python: str) -> Check:
    """The python3 atc's operator compiler will run (acl.python's, when set) and CANN's packages in it."""
    with tempfile.TemporaryDirectory(prefix="omzoo-doctor-") as shims:
        try:
            run_env = cann.with_python(env, python, Path(shims)) if python else env
        except BackendUnavailable as exc:
            return Check.failed("atc python", str(exc), "set acl.python to a Python with CANN's packages, or ''")
        info = cann.python_info(run_env)
    problems = cann.python_problems(info)
    runs = f"runs {info['executable']}, " if info["executable"] and info["executable"] != info["path"] else ""
    where = f"python3 = {info['path'] or '(none)'} ({runs}Python {info['version'] or '?'}" + (
        ", acl.python)" if python else ")")
    if problems:
        return Check.failed("atc python", f"{where}: {'; '.join(problems)}",
                            f"{_CANN_PACKAGES} into that Python, or set acl.python to one that has them")
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return Check.passed("atc python", f"{where}: {packages}")


def _aclruntime_check(env: dict[str, str]) -> Check:
    """aclruntime imported by this interpreter in the CANN environment, as the child that runs a session does."""
    found: dict[str, Any] | None = None
    try:
        proc = subprocess.run([sys.executable, "-c", _ACLRUNTIME_PROBE], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if proc.returncode == 0:
            found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        proc = subprocess.CompletedProcess([], 1, "", str(exc))
    if found is None:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Check.failed("aclruntime", f"not importable by {sys.executable} in the CANN environment: {why}",
                            f"install the aclruntime and ais_bench wheels into {sys.prefix} (the README's Ascend "
                            "section, setup step 1)")
    finalize = ("free_resource present: sessions freed, aclFinalize at exit" if found["free_resource"] else
                "no free_resource (a 2022-11..2024-02 wheel): sessions and aclFinalize are left to process exit")
    return Check.passed("aclruntime", f"version {found['version']}, importable by {sys.executable} in the CANN "
                                      f"environment; {finalize}")


def _device_checks(options: dict[str, Any]) -> list[Check]:
    """The driver's version, npu-smi and the SoC it reports (against acl.soc_version), and other processes on the
    NPUs (any NPU: how npu-smi's numbers map to acl.device_id is unconfirmed)."""
    version, source = cann.driver_version()
    checks = [Check.passed("driver", f"{version} ({source})") if version != cann.UNKNOWN else
              Check.failed("driver", f"no driver version ({cann.ETC / 'ascend_install.info'}, "
                           f"{cann.ASCEND_ROOT / 'driver' / 'version.info'})", "install the NPU driver and firmware")]
    parsed = cann.npu_smi_info()
    if parsed is None:
        hint = "install the NPU driver (npu-smi comes with it)"
        return [*checks, Check.failed("npu-smi", f"{cann.NPU_SMI} absent or failing", hint),
                Check.skipped(DEVICE, "npu-smi")]
    soc, wanted = cann.soc_from_npu_smi(parsed), str(options.get("soc_version") or "")
    if soc is None:
        checks.append(Check.failed("npu-smi", "lists no device", "check the driver and that the card is seen (lspci)"))
    elif wanted and wanted != soc:
        checks.append(Check.failed("npu-smi", f"SoC {soc}, but acl.soc_version is {wanted}",
                                   f"set acl.soc_version to {soc} (or '' to detect it)"))
    else:
        checks.append(Check.passed("npu-smi", f"SoC {soc}, npu-smi {parsed['version']}"))
    busy = [f"pid {p.pid} {p.name} on NPU {p.device.removeprefix('npu:')}" for p in parsed["processes"]]
    checks.append(Check.failed(DEVICE, "busy: " + ", ".join(busy), "wait for those processes or use another device "
                               "(acl.device_id); benchmarks on a shared NPU are not comparable") if busy else
                  Check.passed(DEVICE, f"idle (no process on the NPUs; acl.device_id {options.get('device_id', 0)})"))
    return checks


def path_check(plan: HostPlan) -> Check:
    """atc's and aclruntime's path rules on every ONNX and .om path the pipeline will use under `plan.root`."""
    problems = []
    for model in plan.models:
        onnx = plan.root / paths.simplified(model)
        problems += [f"{onnx}: {p}" for p in path_problems(onnx)]
        for bs in plan.batch_sizes:
            om = om_path(plan.root / paths.compiled(model, bs), model, bs)
            problems += [f"{om}: {p}" for p in om_problems(om)]
    if problems:
        return Check.failed("paths", "; ".join(dict.fromkeys(problems)), "fix the rule each path breaks (above)")
    return Check.passed("paths", f"ONNX and .om paths under {plan.root} follow atc's and aclruntime's rules")
