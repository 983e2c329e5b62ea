"""Ascend backend: ONNX → static-batch `.om` with `atc`, run with `aclruntime` (ASCEND.md §2, §5–§7).

Everything here follows ASCEND.md, which was itself written without hardware. Not yet checked on a device,
and relied on by this module:

- atc's failure exit code and side files (§9.1): success needs exit 0 *and* "ATC run success" *and* a
  non-empty .om; atc runs in a scratch working directory.
- What `get_inputs()` reports for an AIPP input (§9.2): only `.realsize` is checked, against N·H·W·3 bytes.
- That `run` takes any dtype of the right byte size (§9.3): feeds are made C-contiguous and size-checked.
- The float32 timestamp resolution of `exec_time_list` in long sessions (§9.4).
- AIPP's real fp16 error (§9.5); the driver `version.info` key names (§9.6); output tensor names (§9.8,
  so they are read from `get_outputs()`); the `npu-smi info` table layout (ASCEND.md gives no sample).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from omzoo import zoo
from omzoo.backends.base import Backend, BackendUnavailable, CompileSource

UNKNOWN = "unknown"
ASCEND_ROOT = Path("/usr/local/Ascend")

SETUP_HINT = (
    "run `source <ascend-toolkit>/set_env.sh` (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) before "
    "omzoo/dvc so that `atc` is on PATH and the CANN libraries load, and install the two wheels "
    "`aclruntime` and `ais_bench`: pip install -v 'git+https://gitee.com/ascend/tools.git"
    "#egg=aclruntime&subdirectory=ais-bench_workload/tool/ais_bench/backend', then the same with "
    "'#egg=ais_bench&subdirectory=ais-bench_workload/tool/ais_bench' (ASCEND.md §1)"
)

#: atc --log values (ASCEND.md §5.1) and the matching aclruntime session log_level (§2.1)
LOG_LEVELS = {"debug": 1, "info": 2, "warning": 3, "error": 4, "null": 4}

DEFAULTS: dict[str, Any] = {
    "soc_version": "",  # "" = "Ascend" + the npu-smi Name column
    "precision_mode": "force_fp16",  # atc's own default (ASCEND.md §5.2); written out so it is recorded
    "aipp": True,
    "device_id": 0,
    "log": "error",
    "atc": "atc",
    "output_type": "FP32",  # logits stay fp32 whatever the last op computes in (§5.1); "" omits the flag
}

_ATC_SUCCESS = "ATC run success"
_ERROR_CODE = re.compile(r"\bE\d{5}\b")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:")


class AtcError(RuntimeError):
    """atc did not produce a usable .om; carries what the compile stage records."""

    def __init__(self, message: str, returncode: int, error_code: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.error_code = error_code


# --------------------------------------------------------------------------- pure helpers


def _fmt(value: float) -> str:
    """15 significant digits: the form ASCEND.md §6 prints (123.675, 0.0171247538316637)."""
    return f"{value:.15g}"


def aipp_config(profile: Any, height: int, width: int) -> str:
    """Static AIPP for RGB uint8 HWC input that reproduces the profile's `(x/255 - mean)/std`.

    `out = (in - mean_chn - min_chn) * var_reci_chn`, so min = 255·mean and var_reci = 1/(255·std);
    fractional means go in the float `min_chn_*` fields (`mean_chn_*` is int32). Fields at their
    defaults (min 0, var_reci 1) are left out, as in ASCEND.md's examples. No mean/std means /255 only.
    """
    mean = tuple(profile.mean) if profile.mean is not None else (0.0, 0.0, 0.0)
    std = tuple(profile.std) if profile.std is not None else (1.0, 1.0, 1.0)
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ValueError(f"AIPP needs 3 channel means and positive stds, got mean={mean} std={std}")
    lines = [
        "aipp_op {",
        "    aipp_mode : static",
        "    related_input_rank : 0",
        "    input_format : RGB888_U8",
        f"    src_image_size_w : {int(width)}",
        f"    src_image_size_h : {int(height)}",
        "    csc_switch : false",
        "    rbuv_swap_switch : false",
    ]
    lines += [f"    min_chn_{c} : {_fmt(255.0 * m)}" for c, m in enumerate(mean) if m != 0]
    lines += [f"    var_reci_chn_{c} : {_fmt(1.0 / (255.0 * s))}" for c, s in enumerate(std) if 255.0 * s != 1.0]
    lines.append("}")
    return "\n".join(lines) + "\n"


def op_precision_ini(modes: Mapping[str, str]) -> str:
    """`OpType=mode` lines for --op_precision_mode; no comments, since atc may not accept them (§5.3)."""
    for op, mode in modes.items():
        if not op or "=" in op or "\n" in op or not mode or "\n" in mode:
            raise ValueError(f"bad op_precision entry {op!r}: {mode!r}")
    return "".join(f"{op}={mode}\n" for op, mode in modes.items())


def atc_command(
    *,
    onnx: Path,
    output_prefix: Path,
    input_name: str,
    batch_size: int,
    input_size: Sequence[int],
    soc_version: str,
    atc: str = "atc",
    log: str = "error",
    precision_mode: str = "",
    op_precision: Path | None = None,
    aipp: Path | None = None,
    output_type: str = "",
) -> list[str]:
    """The static-shape atc argv of the ModelZoo guides (ASCEND.md §5.1); `.om` is appended to the prefix."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    c, h, w = input_size
    argv = [
        atc,
        "--framework=5",
        f"--model={onnx}",
        f"--output={output_prefix}",
        "--input_format=NCHW",
        f"--input_shape={input_name}:{batch_size},{c},{h},{w}",
        f"--soc_version={soc_version}",
        f"--log={log}",
    ]
    if precision_mode:
        argv.append(f"--precision_mode={precision_mode}")
    if op_precision is not None:
        argv.append(f"--op_precision_mode={op_precision}")
    if aipp is not None:
        argv += [f"--insert_op_conf={aipp}", "--enable_small_channel=1"]
    if output_type:
        argv.append(f"--output_type={output_type}")
    return argv


def parse_version_info(text: str) -> dict[str, str]:
    """`key=value` lines of CANN `*_install.info`, `version.cfg` and the driver `version.info`."""
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
    """The driver file's key names are unconfirmed (§9.6): take `Version` in any case, then `package_version`."""
    lower = {k.lower(): v for k, v in kv.items()}
    return lower.get("version") or lower.get("package_version") or None


def parse_npu_smi(text: str) -> dict[str, Any]:
    """Parse the `npu-smi info` tables into {"version", "devices": [...], "processes": [...]}.

    A device row (`NPU Name | Health | …`) is followed by one row per chip; chip rows are told apart by
    the PCIe bus id in their second cell, which works for 310P (`Chip Device`) and 910B (`Chip`) headers.
    """
    found = re.search(r"Version:\s*(\S+)", text)
    devices: list[dict[str, Any]] = []
    processes: list[dict[str, str]] = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        first = cells[0].split()
        if not first:
            continue
        if first[0] == "NPU" and "Name" in first:
            section = "devices"
            continue
        if first[0] == "NPU" and "Chip" in first:
            section = "processes"
            continue
        if first[0] in ("Chip", "npu-smi", "No"):
            continue
        if section == "devices" and len(cells) >= 3:
            if _BUS_ID.match(cells[1]) and devices:
                devices[-1]["chips"].append({
                    "chip": first[0],
                    "device": first[1] if len(first) > 1 else "",
                    "bus_id": cells[1],
                    "aicore_pct": (cells[2].split() or [""])[0],
                })
            elif len(first) >= 2:
                devices.append({"npu": first[0], "name": " ".join(first[1:]), "health": cells[1], "chips": []})
        elif section == "processes" and len(cells) >= 3 and first[0].isdigit():
            processes.append({"npu": first[0], "chip": first[1] if len(first) > 1 else "",
                              "pid": cells[1], "name": cells[2]})
    return {"version": found.group(1) if found else UNKNOWN, "devices": devices, "processes": processes}


def soc_from_npu_smi(parsed: Mapping[str, Any]) -> str | None:
    """atc's --soc_version is "Ascend" + the Name column of the first device (310P3 → Ascend310P3)."""
    devices = parsed.get("devices") or []
    if not devices or not devices[0]["name"]:
        return None
    name = devices[0]["name"].replace(" ", "")
    return name if name.startswith("Ascend") else f"Ascend{name}"


# --------------------------------------------------------------------------- environment detection


def _read_kv(path: Path) -> dict[str, str]:
    return parse_version_info(path.read_text(encoding="utf-8", errors="replace"))


def _cann_files(env: Mapping[str, str], root: Path, machine: str) -> Iterator[Path]:
    """Candidate CANN version files in ASCEND.md §7 order (first match wins)."""
    arch, info = f"{machine}-linux", "ascend_toolkit_install.info"
    if env.get("ASCEND_TOOLKIT_HOME"):
        yield Path(env["ASCEND_TOOLKIT_HOME"]) / arch / info
    yield root / "ascend-toolkit" / "latest" / arch / info
    yield root / "cann" / arch / info
    versioned = sorted(root.glob(f"cann-*/{arch}/{info}"))
    if len(versioned) == 1:  # several side-by-side installs: which one is active is not ours to guess
        yield versioned[0]
    if env.get("ASCEND_HOME_PATH"):
        home = Path(env["ASCEND_HOME_PATH"])
        yield from sorted(home.glob("ascend_*_install.info"))
        yield from sorted(home.glob("*/ascend_*_install.info"))
    if env.get("ASCEND_TOOLKIT_HOME"):
        yield Path(env["ASCEND_TOOLKIT_HOME"]) / "version.cfg"
    yield root / "ascend-toolkit" / "latest" / "version.cfg"


def _first_version(paths: Iterator[Path], extract: Callable[[Mapping[str, str]], str | None]) -> tuple[str, str]:
    for path in paths:
        try:
            if path.is_file() and (version := extract(_read_kv(path))):
                return version, str(path)
        except OSError:
            continue
    return UNKNOWN, UNKNOWN


def detect_environment(
    environ: Mapping[str, str] | None = None,
    root: Path = ASCEND_ROOT,
    npu_smi: str = "npu-smi",
    etc: Path = Path("/etc"),
) -> dict[str, str]:
    """CANN, driver and SoC versions with where each came from; "unknown" for anything absent. Never raises."""
    env = os.environ if environ is None else environ
    result = dict.fromkeys(
        ("cann_version", "cann_version_source", "driver_version", "driver_version_source",
         "soc_version", "soc_version_source"),
        UNKNOWN,
    )
    with contextlib.suppress(Exception):  # detection is best effort by contract
        result["cann_version"], result["cann_version_source"] = _first_version(
            _cann_files(env, root, platform.machine()), cann_version_from)
    with contextlib.suppress(Exception):
        result["driver_version"], result["driver_version_source"] = _first_version(
            iter([root / "driver" / "version.info", etc / "ascend_install.info"]), driver_version_from)
    with contextlib.suppress(Exception):
        exe = shutil.which(npu_smi)
        if exe:
            proc = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30, check=False)
            parsed = parse_npu_smi(proc.stdout)
            if soc := soc_from_npu_smi(parsed):
                result["soc_version"], result["soc_version_source"] = soc, "npu-smi info"
            if result["driver_version"] == UNKNOWN and parsed["version"] != UNKNOWN:
                result["driver_version"], result["driver_version_source"] = parsed["version"], "npu-smi info"
    return result


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- process-wide aclFinalize

_LIVE: weakref.WeakSet[AclBackend] = weakref.WeakSet()
_FINALIZER: dict[str, Any] = {}


def _finalize_acl() -> None:
    """aclFinalize once per process, after every session still open has been freed (ASCEND.md §2.2)."""
    for backend in list(_LIVE):
        backend.close()
    module = _FINALIZER.pop("module", None)
    if module is not None and hasattr(module.InferenceSession, "finalize"):
        module.InferenceSession.finalize()


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

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        unknown = set(options or {}) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"acl: unknown options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        super().__init__({**DEFAULTS, **(options or {})})
        if str(self.options["log"]) not in LOG_LEVELS:
            raise ValueError(f"acl: log must be one of {sorted(LOG_LEVELS)}, got {self.options['log']!r}")
        self.aipp = bool(self.options["aipp"])
        self.device_id = int(self.options["device_id"])
        self.last_compile: dict[str, Any] = {}
        self._env: dict[str, str] | None = None
        self._acl: Any = None
        self._sess: Any = None
        self._shape: tuple[int, ...] = ()
        self._dtype = np.dtype(np.float32)
        self._out_names: list[str] = []

    # ---- environment

    def environment(self) -> dict[str, str]:
        """Detected once per backend: the toolkit cannot change under a running process."""
        if self._env is None:
            self._env = detect_environment()
        return self._env

    def toolkit_version(self) -> str:
        """The installed CANN version; undetectable means set_env.sh was not sourced, which is fatal here."""
        version = self.environment()["cann_version"]
        if version == UNKNOWN:
            raise BackendUnavailable(
                f"acl: cannot find the CANN version (no ascend_toolkit_install.info under $ASCEND_TOOLKIT_HOME "
                f"or {ASCEND_ROOT}); {SETUP_HINT}")
        return version

    def _atc_path(self) -> str:
        exe = shutil.which(str(self.options["atc"]))
        if exe is None:
            raise BackendUnavailable(f"acl: atc not found (atc option {self.options['atc']!r}); {SETUP_HINT}")
        return exe

    def soc_version(self) -> str:
        soc = str(self.options["soc_version"] or "") or self.environment()["soc_version"]
        if soc == UNKNOWN:
            raise RuntimeError("acl: cannot detect the SoC (`npu-smi info` absent or unreadable); "
                               "set acl.soc_version in params.yaml, e.g. Ascend310P3")
        return soc

    # ---- compile

    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        """Run atc for one static batch size; keep its argv, stdout and stderr next to the .om."""
        atc = self._atc_path()
        spec = src.spec
        if src.onnx is None:
            raise ValueError(f"acl: {spec.id} has no ONNX file to compile")
        onnx_path = Path(src.onnx).resolve()
        _check_onnx_input(onnx_path, spec, self.aipp)
        out_dir = Path(out_dir).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{spec.id}_bs{batch_size}"
        prefix, om = out_dir / stem, out_dir / f"{stem}.om"
        om.unlink(missing_ok=True)  # a stale .om must never pass for this run's output

        aipp_file = op_file = None
        if self.aipp:
            aipp_file = out_dir / f"{stem}.aipp.cfg"
            aipp_file.write_text(aipp_config(spec.recipe, *spec.input_size[1:]), encoding="utf-8")
        if spec.op_precision:
            op_file = out_dir / f"{stem}.op_precision.ini"
            op_file.write_text(op_precision_ini(spec.op_precision), encoding="utf-8")

        argv = atc_command(
            atc=atc, onnx=onnx_path, output_prefix=prefix, input_name=spec.input_name,
            batch_size=batch_size, input_size=spec.input_size, soc_version=self.soc_version(),
            log=str(self.options["log"]), precision_mode=str(self.options["precision_mode"] or ""),
            op_precision=op_file, aipp=aipp_file, output_type=str(self.options["output_type"] or ""),
        )
        env = dict(os.environ)
        env.setdefault("ASCEND_PROCESS_LOG_PATH", str(out_dir / f"{stem}.logs"))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="omzoo-atc-") as scratch:  # atc drops kernel_meta/ etc. in cwd
            proc = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, check=False)
        (out_dir / f"{stem}.atc.stdout").write_text(proc.stdout, encoding="utf-8")
        (out_dir / f"{stem}.atc.stderr").write_text(proc.stderr, encoding="utf-8")

        ok = proc.returncode == 0 and _ATC_SUCCESS in proc.stdout and om.is_file() and om.stat().st_size > 0
        found = _ERROR_CODE.search(proc.stdout + "\n" + proc.stderr)
        code = found.group(0) if found else ""
        self.last_compile = {
            "argv": argv, "returncode": proc.returncode, "ok": ok, "error_code": code,
            "seconds": round(time.perf_counter() - started, 3), "precision_mode": self.options["precision_mode"],
            "aipp": self.aipp, "op_precision": dict(spec.op_precision), **self.environment(),
        }
        (out_dir / f"{stem}.atc.json").write_text(json.dumps(self.last_compile, indent=2) + "\n", encoding="utf-8")
        if not ok:
            if proc.returncode:
                why = f"exit code {proc.returncode}"
            elif _ATC_SUCCESS not in proc.stdout:
                why = f"exit code 0 but no '{_ATC_SUCCESS}' on stdout"
            else:
                why = f"{om.name} missing or empty"
            raise AtcError(
                f"acl: atc failed for {stem} ({why}{', ' + code if code else ''}); logs: {out_dir}/{stem}.atc.*"
                f"\n--- stdout tail ---\n{_tail(proc.stdout)}\n--- stderr tail ---\n{_tail(proc.stderr)}",
                proc.returncode, code)
        return om

    # ---- run

    def load(self, artefact: Path, batch_size: int, spec: zoo.ModelSpec) -> None:
        """Open a session on the .om and settle what run() takes from its input's byte size."""
        acl = _import_aclruntime()
        artefact = Path(artefact)
        self.spec = spec
        self.close()

        opts = acl.session_options()
        opts.log_level = LOG_LEVELS[str(self.options["log"])]
        sess = acl.InferenceSession(str(artefact), self.device_id, opts)
        try:
            inputs = sess.get_inputs()
            if any(dim < 0 for dim in inputs[0].shape):  # built with gears after all (ASCEND.md §5.5)
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
        """AIPP inputs are packed uint8 NHWC (ASCEND.md §6); otherwise the ONNX's NCHW, uint8 or float32.

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
        """uint8 NCHW → NHWC bytes for AIPP, as-is for a uint8 graph, else the profile's float32."""
        if pixels.dtype != np.uint8 or pixels.ndim != 4:
            raise ValueError(f"acl: feed takes uint8 NCHW pixels, got {pixels.dtype} {pixels.shape}")
        if self._dtype == np.uint8:
            return np.ascontiguousarray(pixels.transpose(0, 2, 3, 1) if self.aipp else pixels)
        from omzoo.data.recipe import normalize

        return np.ascontiguousarray(normalize(pixels, self.recipe))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Host → device copy, one synchronous execute, device → host copy of the first output."""
        shape, dtype = self.input_spec()
        if batch.shape != shape or batch.dtype != dtype:
            raise ValueError(f"acl: expected {dtype} {shape}, got {batch.dtype} {batch.shape}")
        batch = np.ascontiguousarray(batch)  # aclruntime checks byte counts only (ASCEND.md §2.5)
        tensor = self._acl.Tensor(batch)
        tensor.to_device(self.device_id)
        first = self._sess.run(self._out_names, [tensor])[0]
        first.to_host()
        return np.array(first).astype(np.float32, copy=False).reshape(shape[0], -1)

    def step(self, batch: np.ndarray) -> float | None:
        """Compute ms = end − start of this call's `aclmdlExecute` (BENCHMARKING.md R1), never the pair mean."""
        if self._sess is None:
            raise RuntimeError("acl: load() first")
        self._sess.reset_sumaryinfo()  # keeps the list one entry long, so reading it stays O(1)
        self.run(batch)
        times = list(self._sess.sumary().exec_time_list)
        if not times:
            return None
        start, end = times[-1]
        return float(end) - float(start)

    def describe(self) -> dict[str, Any]:
        env = self.environment()
        wheels = {}
        for wheel in ("aclruntime", "ais_bench"):
            try:
                wheels[f"{wheel}_version"] = metadata.version(wheel)
            except metadata.PackageNotFoundError:
                wheels[f"{wheel}_version"] = UNKNOWN
        soc = str(self.options["soc_version"] or "") or env["soc_version"]
        return self.described(
            runtime="CANN", runtime_version=env["cann_version"], device=f"npu:{self.device_id} {soc}",
            precision=str(self.options["precision_mode"] or "force_fp16 (atc default)"), threads="",
            cann_version_source=env["cann_version_source"], driver_version=env["driver_version"],
            soc_version=soc, aipp=str(int(self.aipp)),
            output_type=str(self.options["output_type"] or "atc default"),
            compute_interval="exec_time_list end-start: host clock around one synchronous aclmdlExecute",
            **wheels)

    def close(self) -> None:
        """Unload the model (aclruntime 2024+); aclFinalize itself runs once, at process exit."""
        sess, self._sess = self._sess, None
        _LIVE.discard(self)
        if sess is not None and hasattr(sess, "free_resource"):
            sess.free_resource()


def _check_onnx_input(path: Path, spec: zoo.ModelSpec, aipp: bool) -> None:
    """Catch before atc what it would reject late or get silently wrong: a wrong input name (E10016), and
    AIPP on a uint8-input graph, which would normalise twice."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
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
