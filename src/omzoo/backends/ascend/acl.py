"""Ascend backend: ONNX → static-batch `.om` with `atc`, run with `aclruntime` (the README's Ascend section).

atc and aclruntime run in the environment of the branch's CANN root (ascend/cann.py): atc as a child of the
compile stage, aclruntime in a child `omzoo` process started with that environment (load() raises
RestartInEnvironment; its library path must be set before the process starts). atc's argv, AIPP and path rules
live in ascend/atc.py, the host checks `omzoo doctor` prints in ascend/host.py. What is still unverified on
hardware is listed in the README's Ascend section.

Precision is the pipeline's axis (`precisions:`): fp32, fp16 and mixed are atc's precision modes, the flag chosen per
CANN generation (atc.precision_flag: --precision_mode before 8.5, --precision_mode_v2 from 8.5); int8 is AMCT's
calibrated deploy model (ascend/amct.py, unverified on hardware), compiled by atc like the others. The op-precision
ini of a model (sMLP's Gelu high_performance) applies at every precision.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.ascend import amct
from omzoo.backends.ascend.atc import (
    ATC_SUCCESS,
    AtcError,
    aipp_config,
    atc_command,
    check_paths,
    error_code,
    make_private,
    om_path,
    om_problems,
    op_precision_ini,
    precision_flag,
    tail,
)
from omzoo.backends.ascend.cann import (
    CANN_HOME_VAR,
    UNKNOWN,
    cann_environment,
    detect_environment,
    find_cann_home,
    npu_smi_info,
    parse_version_info,
    python_info,
    python_problems,
    set_env_script,
    with_python,
)
from omzoo.backends.ascend.host import host_checks
from omzoo.backends.base import Backend, CompileSource, DeviceProcess
from omzoo.backends.checks import Check, HostPlan
from omzoo.core import zoo
from omzoo.core.errors import BackendUnavailable, RestartInEnvironment
from omzoo.core.io import open_regular, sha256_file
from omzoo.core.onnxgraph import load_onnx
from omzoo.core.params import AclOptions

SETUP_HINT = (
    "set acl.cann_home in params.yaml to the CANN toolkit directory (e.g. /usr/local/Ascend/ascend-toolkit/8.0.RC3; "
    "omzoo sources its set_env.sh for atc and aclruntime itself), and install the two wheels `aclruntime` and "
    "`ais_bench` into the venv: pip install -v 'git+https://gitee.com/ascend/tools.git"
    "#egg=aclruntime&subdirectory=ais-bench_workload/tool/ais_bench/backend', then the same with "
    "'#egg=ais_bench&subdirectory=ais-bench_workload/tool/ais_bench' (the README's Ascend section). "
    "`omzoo doctor --backend acl` checks the rest"
)

#: atc --log values and the matching aclruntime session log_level
LOG_LEVELS = {"debug": 1, "info": 2, "warning": 3, "error": 4, "null": 4}




# --------------------------------------------------------------------------- process-wide aclFinalize

_LIVE: weakref.WeakSet[AclBackend] = weakref.WeakSet()
_FINALIZER: dict[str, Any] = {}


def _finalize_acl() -> None:
    """aclFinalize once per process, after every session still open has been freed (aclruntime's rule).

    Wheels from 2022-11 to 2024-02 have `finalize` as an instance method, so the class-level call would raise
    TypeError there; the static one arrived with `free_resource`, which is what is tested for.
    """
    for backend in list(_LIVE):
        backend.close()
    module = _FINALIZER.pop("module", None)
    session = getattr(module, "InferenceSession", None)
    if hasattr(session, "free_resource") and hasattr(session, "finalize"):
        session.finalize()


def _import_aclruntime() -> Any:
    try:
        import aclruntime
    except ImportError as exc:
        raise BackendUnavailable(f"acl: cannot import aclruntime ({exc}); {SETUP_HINT}") from exc
    if "module" not in _FINALIZER:
        _FINALIZER["module"] = aclruntime
        atexit.register(_finalize_acl)
    return aclruntime


# --------------------------------------------------------------------------- backend


class AclBackend(Backend):
    """atc-compiled `.om` files run through aclruntime; one static `.om` per batch size, like the guides."""

    name = "acl"
    Options = AclOptions
    PRECISIONS = ("fp32", "fp16", "mixed", "int8")
    FINGERPRINT_EXTRA = ("cann_home", "cann_version_source", "atc", "atc_version", "atc_sha256", "driver_version",
                         "soc_version", "aipp", "output_type", "aclruntime_version", "ais_bench_version")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        if str(self.options["log"]) not in LOG_LEVELS:
            raise ValueError(f"acl: log must be one of {sorted(LOG_LEVELS)}, got {self.options['log']!r}")
        self.aipp = bool(self.options["aipp"])
        self.device_id = int(self.options["device_id"])
        self.last_compile: dict[str, Any] = {}
        self._env: dict[str, str] | None = None
        self._process_env: dict[str, str] | None = None
        self._acl: Any = None
        self._sess: Any = None
        self._shape: tuple[int, ...] = ()
        self._dtype = np.dtype(np.float32)
        self._out_names: list[str] = []

    # ---- environment

    def cann_home(self) -> Path:
        """The CANN root this backend uses (acl.cann_home, else the shell's, else the default install)."""
        configured = str(self.options["cann_home"] or "")
        home = find_cann_home(configured)
        if home is None or not home.is_dir():
            where = f"acl.cann_home {configured!r} is not a directory" if configured else (
                "no CANN toolkit found ($ASCEND_TOOLKIT_HOME unset, no ascend-toolkit/latest or cann under "
                "/usr/local/Ascend)")
            raise BackendUnavailable(f"acl: {where}; {SETUP_HINT}")
        return home

    def process_env(self) -> dict[str, str]:
        """The environment atc and aclruntime run in: the CANN root's set_env.sh over this one, minus the venv."""
        if self._process_env is None:
            self._process_env = cann_environment(self.cann_home())
        return self._process_env

    def environment(self) -> dict[str, str]:
        """Detected once per backend: the toolkit cannot change under a running process."""
        if self._env is None:
            self._env = detect_environment(cann_home=str(self.options["cann_home"] or ""))
        return self._env

    def toolkit_version(self) -> str:
        """The CANN root's version; a root without one cannot be compiled for, as nothing would label the .om."""
        home = self.cann_home()
        version = self.environment()["cann_version"]
        if version == UNKNOWN:
            raise BackendUnavailable(f"acl: no CANN version file (<arch>-linux/ascend_toolkit_install.info, "
                                     f"version.cfg) in {home}; {SETUP_HINT}")
        return version

    def _atc_path(self, env: dict[str, str]) -> str:
        exe = shutil.which(str(self.options["atc"]), path=env.get("PATH", ""))
        if exe is None:
            raise BackendUnavailable(f"acl: atc not found in {self.cann_home()}'s environment (atc option "
                                     f"{self.options['atc']!r}); {SETUP_HINT}")
        return exe

    def atc_identity(self) -> dict[str, str]:
        """Which atc compiles here: its path in the CANN environment, the version in its compiler's version.info
        and the sha256 of the file (docs/ascend.md §5.4: whether `atc --version` exists is unconfirmed), so an
        in-place upgrade shows; "unknown" for what cannot be read. Never raises: it is provenance."""
        found = dict.fromkeys(("atc", "atc_version", "atc_sha256"), UNKNOWN)
        try:
            atc = Path(self._atc_path(self.process_env())).resolve()
            found["atc"], found["atc_sha256"] = str(atc), sha256_file(atc)
            info = atc.parents[1] / "version.info"  # <root>/compiler/bin/atc -> <root>/compiler/version.info
            found["atc_version"] = parse_version_info(info.read_text(encoding="utf-8", errors="replace")).get(
                "Version", UNKNOWN)
        except Exception:  # noqa: BLE001 - best effort by contract, as detect_environment
            pass
        return found

    def check_precision(self, precision: str) -> None:
        """bf16 is refused by name: atc's bf16 modes exist on Atlas A2 only and are not offered here."""
        if precision == "bf16":
            raise ValueError("backend acl cannot run precision 'bf16' here (atc's bf16 modes are Atlas A2 only and "
                             "not offered); it runs fp32, fp16, mixed, int8 (remove bf16 from `precisions:`)")
        super().check_precision(precision)

    def atc_precision_flag(self) -> str:
        """The atc flag for this backend's precision on its CANN root (BackendUnavailable without a CANN version)."""
        return precision_flag(self.precision, self.toolkit_version())

    def precision_record(self) -> dict[str, Any]:
        """The precision and the exact flag atc was given (the last compile's, else the one it would get); for int8
        also what AMCT was given and made (unverified on hardware)."""
        done = self.last_compile if self.last_compile.get("precision") == self.precision else {}
        record: dict[str, Any] = {"precision": self.precision,
                                  "atc_flag": done.get("precision_flag") or self.atc_precision_flag()}
        if self.precision == "int8":
            made = done.get("amct") or {}
            record["quantizer"] = "amct_onnx (unverified on hardware)"
            record["amct"] = {k: made[k] for k in ("calibration_images", "batch_num", "skip_layers",
                                                   "activation_offset", "amct_version", "deploy_model_sha256")
                              if k in made}
            record["not_applied"] = {k: v for k, v in done.get("quantization", {}).items() if k in amct.NOT_APPLIED}
        return record

    def soc_version(self) -> str:
        soc = str(self.options["soc_version"] or "") or self.environment()["soc_version"]
        if soc == UNKNOWN:
            raise RuntimeError("acl: cannot detect the SoC (`npu-smi info` absent or unreadable); "
                               "set acl.soc_version in params.yaml, e.g. Ascend310P3")
        return soc

    # ---- compile

    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        """Run atc for one static batch size at the source's precision in the CANN environment (int8: AMCT first,
        then atc on its deploy model); keep its argv, output and Python next to the .om."""
        spec = src.spec
        if src.onnx is None:
            raise ValueError(f"acl: {spec.id} has no ONNX file to compile")
        self.check_precision(src.precision)
        self.precision = src.precision
        home = self.cann_home()
        env = self.process_env()
        atc = self._atc_path(env)
        flag = self.atc_precision_flag()
        soc = self.soc_version()  # before AMCT's minutes, like every other check
        onnx_path = Path(src.onnx).resolve()
        float_input = _check_onnx_input(onnx_path, spec, self.aipp)
        batches = amct.calibration_batches(src.calibration, spec.input_size, spec.recipe, float_input) \
            if self.precision == "int8" else []
        out_dir = Path(out_dir).resolve()
        om = om_path(out_dir, spec.id, batch_size, self.precision)
        stem, prefix = om.stem, om.with_suffix("")
        aipp_file = out_dir / f"{stem}.aipp.cfg" if self.aipp else None
        op_file = out_dir / f"{stem}.op_precision.ini" if spec.op_precision else None
        amct_dir = out_dir / f"{stem}.amct" if batches else None
        configs = {"AIPP config": aipp_file, "op-precision ini": op_file, "AMCT folder": amct_dir}
        check_paths({"ONNX": onnx_path, "output": prefix, **{k: v for k, v in configs.items() if v}}, om)
        out_dir.mkdir(parents=True, exist_ok=True)
        om.unlink(missing_ok=True)  # a stale .om must never pass for this run's output
        if aipp_file is not None:
            aipp_file.write_text(aipp_config(spec.recipe, *spec.input_size[1:]), encoding="utf-8")
        if op_file is not None:
            op_file.write_text(op_precision_ini(spec.op_precision), encoding="utf-8")

        quantized: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="omzoo-atc-") as scratch:  # atc drops kernel_meta/ etc. in cwd
            run_env = dict(env)
            if self.options["python"]:
                run_env = with_python(run_env, str(self.options["python"]), Path(scratch) / "python")
            run_env.setdefault("ASCEND_PROCESS_LOG_PATH", str(out_dir / f"{stem}.logs"))
            python = python_info(run_env)  # the python3 atc's operator compiler will find
            cwd = Path(scratch) / "work"
            cwd.mkdir()
            model = onnx_path
            if amct_dir is not None:  # int8: AMCT's deploy model is what atc compiles (unverified on hardware)
                quantized = amct.quantize(onnx=onnx_path, batches=batches, work=amct_dir, env=run_env, cwd=cwd,
                                          python=python["path"] or "python3", stem=stem)
                model = Path(quantized["deploy_model"])
            argv = atc_command(
                atc=atc, onnx=model, output_prefix=prefix, input_name=spec.input_name,
                batch_size=batch_size, input_size=spec.input_size, soc_version=soc,
                log=str(self.options["log"]), precision=flag,
                op_precision=op_file, aipp=aipp_file, output_type=str(self.options["output_type"] or ""),
            )
            started = time.perf_counter()
            try:
                proc = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True, check=False)
            finally:
                if amct_dir is not None:
                    amct.drop_large(amct_dir)
            seconds = round(time.perf_counter() - started, 3)
        (out_dir / f"{stem}.atc.stdout").write_text(proc.stdout, encoding="utf-8")
        (out_dir / f"{stem}.atc.stderr").write_text(proc.stderr, encoding="utf-8")

        ok = proc.returncode == 0 and ATC_SUCCESS in proc.stdout and om.is_file() and om.stat().st_size > 0
        code = error_code(proc.stdout + "\n" + proc.stderr)
        problems = python_problems(python)
        self.last_compile = {
            "argv": argv, "returncode": proc.returncode, "ok": ok, "error_code": code,
            "seconds": seconds, "precision": self.precision, "precision_flag": flag,
            **({"amct": quantized, "quantization": dict(src.quantization)} if quantized else {}),
            "aipp": self.aipp, "op_precision": dict(spec.op_precision), "cann_home": str(home),
            "set_env": str(set_env_script(home)), "atc": atc, "atc_python": python,
            "atc_python_problems": problems, **self.environment(),
        }
        (out_dir / f"{stem}.atc.json").write_text(json.dumps(self.last_compile, indent=2) + "\n", encoding="utf-8")
        if not ok:
            if proc.returncode:
                why = f"exit code {proc.returncode}"
            elif ATC_SUCCESS not in proc.stdout:
                why = f"exit code 0 but no '{ATC_SUCCESS}' on stdout"
            else:
                why = f"{om.name} missing or empty"
            hint = (f"\natc's Python {python['path'] or '(none)'}: {'; '.join(problems)}; set acl.python to a Python "
                    "with CANN's packages (`omzoo doctor --backend acl`)") if problems else ""
            raise AtcError(
                f"acl: atc failed for {stem} ({why}{', ' + code if code else ''}); logs: {out_dir}/{stem}.atc.*{hint}"
                f"\n--- stdout tail ---\n{tail(proc.stdout)}\n--- stderr tail ---\n{tail(proc.stderr)}",
                proc.returncode, code)
        make_private(om)
        return om

    # ---- run

    def load(self, artefact: Path, batch_size: int, spec: zoo.ModelSpec) -> None:
        """Open a session on the .om and settle what run() takes from its input's byte size.

        The path rules are checked first; then a process not started in the CANN environment hands over to a child
        that is (RestartInEnvironment), since aclruntime's libraries resolve at process start.
        """
        artefact = Path(artefact).absolute()
        problems = om_problems(artefact)
        if problems:
            raise ValueError(f"acl: aclruntime would refuse {artefact}: " + "; ".join(problems))
        open_regular(artefact, what="compiled model").close()  # a FIFO or a device is named as such, never read
        home = os.path.realpath(self.cann_home())
        if os.environ.get(CANN_HOME_VAR) != home:
            raise RestartInEnvironment(f"acl: aclruntime must start in the environment of {home}'s set_env.sh; "
                                       f"`omzoo` reruns the command in a child with it", self.process_env())
        acl = _import_aclruntime()
        self.spec = spec
        self.close()

        opts = acl.session_options()
        opts.log_level = LOG_LEVELS[str(self.options["log"])]
        sess = acl.InferenceSession(str(artefact), self.device_id, opts)
        try:
            inputs = sess.get_inputs()
            if any(dim < 0 for dim in inputs[0].shape):  # built with dynamic-batch gears after all
                sess.set_dynamic_batchsize(batch_size)
            else:
                sess.set_staticbatch()
            self._shape, self._dtype = self._input_layout(int(inputs[0].realsize), batch_size, artefact.name)
            self._out_names = [d.name for d in sess.get_outputs()]
        except BaseException:
            if hasattr(sess, "free_resource"):
                sess.free_resource()
            raise
        self._acl, self._sess = acl, sess
        _LIVE.add(self)

    def _input_layout(self, realsize: int, batch_size: int, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """AIPP inputs are packed uint8 NHWC (RGB888_U8); otherwise the ONNX's NCHW, uint8 or float32.

        What get_inputs() reports for an AIPP input is unconfirmed, so only the byte count is trusted.
        """
        assert self.spec is not None
        c, h, w = self.spec.input_size
        pixels = batch_size * c * h * w
        if self.aipp and realsize == pixels:
            return (batch_size, h, w, c), np.dtype(np.uint8)
        if not self.aipp and realsize == pixels:
            return (batch_size, c, h, w), np.dtype(np.uint8)
        if not self.aipp and realsize == 4 * pixels:
            return (batch_size, c, h, w), np.dtype(np.float32)
        raise RuntimeError(
            f"acl: {name} input is {realsize} B, but {self.spec.id} at bs {batch_size} with aipp={self.aipp} "
            f"needs {pixels} B (uint8) or {4 * pixels} B (float32, no AIPP); compiled with other options?")

    def input_spec(self) -> tuple[tuple[int, ...], np.dtype]:
        if self._sess is None:
            raise RuntimeError("acl: load() first")
        return self._shape, self._dtype

    def feed(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NCHW → NHWC bytes for AIPP, as-is for a uint8 graph, else the recipe's float32."""
        if pixels.dtype != np.uint8 or pixels.ndim != 4:
            raise ValueError(f"acl: feed takes uint8 NCHW pixels, got {pixels.dtype} {pixels.shape}")
        if self._dtype == np.uint8:
            return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1) if self.aipp else pixels)
        from omzoo.core.recipe import normalize

        return np.ascontiguousarray(normalize(pixels, self.recipe))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Host → device copy, one synchronous execute, device → host copy of the first output."""
        shape, dtype = self.input_spec()
        if batch.shape != shape or batch.dtype != dtype:
            raise ValueError(f"acl: expected {dtype} {shape}, got {batch.dtype} {batch.shape}")
        batch = np.ascontiguousarray(batch)  # aclruntime checks byte counts only, never shape or dtype
        tensor = self._acl.Tensor(batch)
        tensor.to_device(self.device_id)
        first = self._sess.run(self._out_names, [tensor])[0]
        first.to_host()
        return np.array(first).astype(np.float32, copy=False).reshape(shape[0], -1)

    def step(self, batch: np.ndarray) -> float | None:
        """Compute ms = end − start of this call's `aclmdlExecute` (no host/device copies), never the pair mean."""
        if self._sess is None:
            raise RuntimeError("acl: load() first")
        self._sess.reset_sumaryinfo()  # keeps the list one entry long, so reading it stays O(1)
        self.run(batch)
        times = list(self._sess.sumary().exec_time_list)
        if not times:
            return None
        start, end = times[-1]
        return float(end) - float(start)

    def accelerator(self) -> str | None:
        return "npu"

    def device_processes(self) -> list[DeviceProcess]:
        """The process table of `npu-smi info`, every NPU's (how its numbers map to device_id is unconfirmed)."""
        parsed = npu_smi_info()
        return list(parsed["processes"]) if parsed else []

    def host_checks(self, plan: HostPlan) -> list[Check]:
        return host_checks(self, plan)

    def describe(self) -> dict[str, Any]:
        env = self.environment()
        wheels = {}
        for wheel in ("aclruntime", "ais_bench"):
            try:
                wheels[f"{wheel}_version"] = metadata.version(wheel)
            except metadata.PackageNotFoundError:
                wheels[f"{wheel}_version"] = UNKNOWN
        soc = str(self.options["soc_version"] or "") or env["soc_version"]
        try:
            flag = precision_flag(self.precision, env["cann_version"])
        except ValueError:  # no CANN version: provenance says so rather than failing
            flag = "atc flag unknown: no CANN version"
        made = "AMCT deploy model, " if self.precision == "int8" else ""
        return self.described(
            runtime="CANN", runtime_version=env["cann_version"], device=f"npu:{self.device_id} {soc}",
            precision=f"{self.precision} ({made}{flag})", threads="",
            cann_version_source=env["cann_version_source"],
            cann_home=str(self.options["cann_home"] or "") or os.environ.get(CANN_HOME_VAR, UNKNOWN),
            driver_version=env["driver_version"], soc_version=soc, aipp=str(int(self.aipp)),
            output_type=str(self.options["output_type"] or "atc default"),
            compute_interval="exec_time_list end-start: host clock around one synchronous aclmdlExecute",
            **self.atc_identity(), **wheels)

    def close(self) -> None:
        """Unload the model (aclruntime 2024+); aclFinalize itself runs once, at process exit."""
        sess, self._sess = self._sess, None
        _LIVE.discard(self)
        if sess is not None and hasattr(sess, "free_resource"):
            sess.free_resource()


def _check_onnx_input(path: Path, spec: zoo.ModelSpec, aipp: bool) -> bool:
    """Catch before atc what it would reject late or get silently wrong: a wrong input name (E10016), and
    AIPP on a uint8-input graph, which would normalise twice. True when the graph takes float32 (not uint8)."""
    import onnx

    graph = load_onnx(path).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ValueError(f"acl: {path} has no graph input")
    first = inputs[0]
    if first.name != spec.input_name:
        raise ValueError(f"acl: {path} input is {first.name!r}, the registry says {spec.input_name!r} "
                         f"(atc --input_shape must name the graph's input)")
    if aipp and first.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
        raise ValueError(f"acl: {path} takes uint8 pixels and normalises in-graph; AIPP would normalise "
                         "again. Compile the float32-input export, or set acl.aipp: false")
    return first.type.tensor_type.elem_type != onnx.TensorProto.UINT8
