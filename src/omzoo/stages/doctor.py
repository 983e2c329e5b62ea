"""`omzoo doctor`: can this host run the configured backend? One line per check, with what to do when it fails.

It reads params.yaml and asks the backends' own probes (imports no other verb), so what it reports is what the
stages will meet: for acl the CANN root, its set_env.sh environment, atc and the Python atc runs, aclruntime in that
environment, the driver, npu-smi, the SoC and whether the device is idle, and the path rules of atc/aclruntime.
Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omzoo.backends.artefact import version_matches
from omzoo.backends.ascend import cann
from omzoo.backends.ascend.atc import om_problems, path_problems
from omzoo.backends.base import Backend, BackendUnavailable, backend_names, get_backend
from omzoo.core import paths
from omzoo.core.params import PARAMS_HELP, Params, load_params
from omzoo.core.provenance import cpu_model

HELP = "check that this host can run the configured backend: one line per check, and what to do when one fails"

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


@dataclass
class Check:
    name: str
    status: str  # "ok", "FAIL", or "skip" (an earlier check it needs failed)
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<16} {self.detail}"
        return f"{text}  → fix: {self.fix}" if self.status == "FAIL" and self.fix else text


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "FAIL", detail, fix)


def _skip(name: str, needs: str) -> Check:
    return Check(name, "skip", f"needs {needs}")


def usable_cores() -> int:
    """The cores this process may run on (a container's affinity, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def toolkit_check(installed: str, expected: str, fix: str) -> Check:
    """compile's rule: the pin's version components are a prefix of the installed version's (empty = any)."""
    pinned = f"toolkit.version {expected!r}" if expected else "toolkit.version empty: any version"
    if expected and not version_matches(expected, installed):
        return _fail("toolkit.version", f"installed {installed}, {pinned}", fix)
    return _ok("toolkit.version", f"installed {installed} ({pinned})")


def _threads_check(threads: int, option: str) -> Check:
    cores = usable_cores()
    if threads > cores:
        return _fail("threads", f"{threads} threads on {cores} usable cores (oversubscribed)",
                     f"set {option} to {cores} or less")
    return _ok("threads", f"{threads} threads on {cores} usable cores ({cpu_model()})")


# --------------------------------------------------------------------------- per backend


def onnxruntime_checks(backend: Any, expected: str) -> list[Check]:
    """Version, providers, the device they run on, threads vs cores."""
    import onnxruntime

    checks = [toolkit_check(onnxruntime.__version__, expected,
                            f"pip install onnxruntime=={expected}.* or check out the branch for "
                            f"{onnxruntime.__version__}")]
    try:
        providers = backend.providers()
    except BackendUnavailable as exc:
        return [*checks, _fail("providers", str(exc), "install onnxruntime-gpu, or set onnxruntime.providers: auto")]
    checks.append(_ok("providers", ", ".join(providers)))
    on_cpu = providers[0] == "CPUExecutionProvider"
    checks.append(_ok("device", cpu_model() if on_cpu else f"{onnxruntime.get_device()} ({providers[0]})"))
    return [*checks, _threads_check(backend.threads(), "onnxruntime.threads")]


def torch_checks(backend: Any, expected: str) -> list[Check]:
    """Version, the device the options resolve to, threads vs cores."""
    import torch

    checks = [toolkit_check(torch.__version__, expected, f"install torch {expected} or check out the branch for "
                                                         f"{torch.__version__}")]
    try:
        device = backend.resolve_device()
    except (BackendUnavailable, ValueError) as exc:
        return [*checks, _fail("device", str(exc), "set torch.device (auto, cpu, cuda or cuda:N) and precision")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    checks.append(_ok("device", f"{device} ({name})"))
    return [*checks, _threads_check(int(backend.options.get("threads") or torch.get_num_threads()), "torch.threads")]


def _aclruntime_check(env: dict[str, str]) -> Check:
    try:
        proc = subprocess.run([sys.executable, "-c", _ACLRUNTIME_PROBE], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        found = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        found, proc = None, subprocess.CompletedProcess([], 1, "", str(exc))
    if found is None:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return _fail("aclruntime", f"not importable by {sys.executable} in the CANN environment: {why}",
                     f"install the aclruntime and ais_bench wheels into {sys.prefix} (ASCEND.md §1)")
    finalize = ("free_resource present: sessions freed, aclFinalize at exit" if found["free_resource"] else
                "no free_resource (a 2022-11..2024-02 wheel): sessions and aclFinalize are left to process exit")
    return _ok("aclruntime", f"version {found['version']}, importable by {sys.executable} in the CANN environment; "
                             f"{finalize}")


def _device_checks(options: dict[str, Any]) -> list[Check]:
    version, source = cann.driver_version()
    checks = [_ok("driver", f"{version} ({source})") if version != cann.UNKNOWN else
              _fail("driver", f"no driver version ({cann.ETC / 'ascend_install.info'}, "
                    f"{cann.ASCEND_ROOT / 'driver' / 'version.info'})", "install the NPU driver and firmware")]
    parsed = cann.npu_smi_info()
    if parsed is None:
        hint = "install the NPU driver (npu-smi comes with it)"
        return [*checks, _fail("npu-smi", f"{cann.NPU_SMI} absent or failing", hint), _skip("device", "npu-smi")]
    soc, wanted = cann.soc_from_npu_smi(parsed), str(options.get("soc_version") or "")
    if soc is None:
        checks.append(_fail("npu-smi", "lists no device", "check the driver and that the card is seen (lspci)"))
    elif wanted and wanted != soc:
        checks.append(_fail("npu-smi", f"SoC {soc}, but acl.soc_version is {wanted}",
                            f"set acl.soc_version to {soc} (or '' to detect it)"))
    else:
        checks.append(_ok("npu-smi", f"SoC {soc}, npu-smi {parsed['version']}"))
    busy = [f"pid {p['pid']} {p['name']} on NPU {p['npu']}" for p in parsed["processes"]]
    checks.append(_fail("device", "busy: " + ", ".join(busy), "wait for those processes or use another device "
                        "(acl.device_id); benchmarks on a shared NPU are not comparable") if busy else
                  _ok("device", f"idle (no process on the NPUs; acl.device_id {options.get('device_id', 0)})"))
    return checks


def path_checks(root: Path, params: Params) -> Check:
    """atc's and aclruntime's path rules (ASCEND.md §10) on every ONNX and .om path the pipeline will use."""
    problems = []
    for model in params.models:
        onnx = root / paths.simplified(model)
        problems += [f"{onnx}: {p}" for p in path_problems(onnx)]
        for bs in params.batch_sizes:
            om = root / paths.compiled(model, bs) / f"{model}_bs{bs}.om"
            problems += [f"{om}: {p}" for p in om_problems(om)]
    if problems:
        return _fail("paths", "; ".join(dict.fromkeys(problems)), "fix the rule each path breaks (above)")
    return _ok("paths", f"ONNX and .om paths under {root} follow atc's and aclruntime's rules")


def acl_checks(backend: Any, expected: str, root: Path, params: Params) -> list[Check]:
    """CANN root and version, set_env.sh, atc, atc's Python, aclruntime there, driver, npu-smi, device, paths."""
    options = backend.options
    checks: list[Check] = []
    try:
        home = backend.cann_home()
    except BackendUnavailable:
        configured = str(options.get("cann_home") or "")
        checks.append(_fail("cann root", f"acl.cann_home {configured!r} is not a directory" if configured else
                             "none found: acl.cann_home empty, $ASCEND_TOOLKIT_HOME unset, nothing under "
                             f"{cann.ASCEND_ROOT}", "install the CANN toolkit and set acl.cann_home to its version "
                             "directory, e.g. /usr/local/Ascend/ascend-toolkit/8.0.RC3"))
        checks += [_skip(n, "a CANN root") for n in ("toolkit.version", "set_env.sh", "atc", "atc python",
                                                     "aclruntime")]
        return [*checks, *_device_checks(options), path_checks(root, params)]
    version, source = cann.cann_version(home)
    how = "acl.cann_home" if options.get("cann_home") else "found; set acl.cann_home to pin it"
    checks.append(_ok("cann root", f"{home} ({how}): CANN {version} from {source}") if version != cann.UNKNOWN else
                  _fail("cann root", f"{home} has no version file", "point acl.cann_home at a CANN toolkit version "
                        "directory (holding <arch>-linux/ascend_toolkit_install.info)"))
    checks.append(toolkit_check(version, expected, f"check out the branch for CANN {version}, or set acl.cann_home "
                                                   f"to a CANN {expected} install"))
    try:
        env = backend.process_env()
    except BackendUnavailable as exc:
        checks.append(_fail("set_env.sh", str(exc).splitlines()[0], "point acl.cann_home at a directory whose "
                            "set_env.sh (or bin/setenv.bash) selects that directory"))
        checks += [_skip(n, "set_env.sh") for n in ("atc", "atc python", "aclruntime")]
        return [*checks, *_device_checks(options), path_checks(root, params)]
    checks.append(_ok("set_env.sh", f"{cann.set_env_script(home)} selects {home}; the venv is off PATH"))
    atc = shutil.which(str(options.get("atc") or "atc"), path=env.get("PATH", ""))
    checks.append(_ok("atc", atc) if atc else
                  _fail("atc", f"{options.get('atc')!r} not on the CANN environment's PATH",
                        f"install the CANN toolkit into {home} (atc is in its bin/), or set acl.atc"))
    checks.append(_python_check(env, str(options.get("python") or "")))
    checks.append(_aclruntime_check(env))
    return [*checks, *_device_checks(options), path_checks(root, params)]


def _python_check(env: dict[str, str], python: str) -> Check:
    with tempfile.TemporaryDirectory(prefix="omzoo-doctor-") as shims:
        try:
            run_env = cann.with_python(env, python, Path(shims)) if python else env
        except BackendUnavailable as exc:
            return _fail("atc python", str(exc), "set acl.python to a Python with CANN's packages, or ''")
        info = cann.python_info(run_env)
    problems = cann.python_problems(info)
    runs = f"runs {info['executable']}, " if info["executable"] and info["executable"] != info["path"] else ""
    where = f"python3 = {info['path'] or '(none)'} ({runs}Python {info['version'] or '?'}" + (
        ", acl.python)" if python else ")")
    if problems:
        return _fail("atc python", f"{where}: {'; '.join(problems)}",
                     f"{_CANN_PACKAGES} into that Python, or set acl.python to one that has them")
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return _ok("atc python", f"{where}: {packages}")


# --------------------------------------------------------------------------- verb


def run_checks(params: Params, name: str, root: Path) -> list[Check]:
    """Every check for backend `name` with its params section; `root` is where the pipeline's files live."""
    options = params.section(name)
    expected = params.toolkit_version
    try:
        backend: Backend = get_backend(name, options)
    except (ValueError, BackendUnavailable) as exc:
        return [_fail("backend", f"{name}: {exc}", f"fix the {name} section of params.yaml")]
    checks = [_ok("backend", f"{name} ({'configured' if params.backend[0] == name else 'asked'})")]
    per_backend = {"onnxruntime": lambda: onnxruntime_checks(backend, expected),
                   "torch": lambda: torch_checks(backend, expected),
                   "acl": lambda: acl_checks(backend, expected, root, params)}

    def generic() -> list[Check]:  # a backend without checks of its own: the toolkit pin at least
        return [toolkit_check(backend.toolkit_version(), expected,
                              f"install {name} {expected} or check out the branch for the installed one")]

    try:
        return checks + per_backend.get(name, generic)()
    except ImportError as exc:
        return [*checks, _fail("runtime", f"{name}: {exc}", f"install {name} into {sys.prefix}")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", type=Path, help=PARAMS_HELP)
    p.add_argument("--backend", choices=backend_names(), help="check this backend instead of params.yaml's")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    name = args.backend or params.backend[0]
    checks = run_checks(params, name, params.path.resolve().parent)
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if c.status == "FAIL"]
    skipped = sum(c.status == "skip" for c in checks)
    if failed or skipped:
        print(f"{name}: NOT ready on this host: failed {', '.join(failed)}" + (f"; {skipped} checks skipped"
                                                                              if skipped else ""))
        return 1
    print(f"{name}: ready on this host")
    return 0
