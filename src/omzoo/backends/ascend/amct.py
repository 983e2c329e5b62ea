"""int8 on Ascend: AMCT post-training quantization of the ONNX graph, whose deploy model atc then compiles.

The flow is AMCT for ONNX's own (`amct_onnx`, the CANN AMCT guide's PTQ APIs): `create_quant_config` finds the
quantizable layers and writes a config, `quantize_model` inserts the calibration operators and writes the modified
model, the modified model runs the calibration batches under ONNX Runtime (with AMCT's session options, which
register its custom operators) to fill the scale/offset record, and `save_model` writes
`<prefix>_deploy_model.onnx` (AscendQuant/AscendDequant inserted), the file atc compiles, beside a fake-quant model
for ONNX Runtime. It runs as a child Python in the CANN environment atc runs in (amct_onnx lives in the toolkit's
Python, not the venv), on the calibration images the calibrate stage chose, written as .npy batches beside it.

UNVERIFIED ON HARDWARE: no AMCT install has run this. The API calls follow the AMCT docs (CANN 6.0 to 8.5); the
tests run it against a fake amct_onnx (tests/fake_cann.py). Whether atc accepts the deploy model of every registry
model, and the int8 accuracy, are unknown.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.ascend.atc import tail
from omzoo.core.io import sha256_file
from omzoo.core.params import PrecisionConfig
from omzoo.core.recipe import Recipe, normalize

#: calibration images per AMCT batch (batch_num = the number of batches): one batch at the default 32 images
BATCH = 32
#: what create_quant_config is given besides the files (the AMCT guide's defaults, written out so they are recorded)
SETTINGS: dict[str, Any] = {"skip_layers": [], "activation_offset": True}
#: the `precision:` keys AMCT does not take: it calibrates activations with its own IFMR and weights with ARQ
#: (per channel), so these ONNX Runtime settings are recorded as not applied rather than silently dropped
NOT_APPLIED = tuple(f.name for f in fields(PrecisionConfig) if f.name != "calibration_images")
#: the work files that are large (calibration batches, the models) and go once atc has read the deploy model
LARGE = ("*.npy", "*.onnx")

#: the child's program: one JSON job file in, the AMCT calls in order, one JSON summary out
SCRIPT = '''\
"""AMCT post-training quantization of one ONNX model (written by omzoo's acl backend; run in the CANN environment)."""
import glob, hashlib, json, os, sys

import numpy as np
import onnxruntime as ort
import amct_onnx as amct

job = json.load(open(sys.argv[1]))
amct.create_quant_config(job["config"], job["model"], skip_layers=job["skip_layers"], batch_num=len(job["batches"]),
                         activation_offset=job["activation_offset"])
amct.quantize_model(job["config"], job["model"], job["modified"], job["record"])
session = ort.InferenceSession(job["modified"], sess_options=getattr(amct, "AMCT_SO", None),
                               providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
ran = []
for path in job["batches"]:
    x = np.load(path, allow_pickle=False)
    session.run(None, {name: x})
    ran.append({"file": os.path.basename(path), "shape": list(x.shape), "dtype": str(x.dtype),
                "sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()})
amct.save_model(job["modified"], job["record"], job["save_path"])
deploy = job["save_path"] + "_deploy_model.onnx"
if not os.path.isfile(deploy):
    found = sorted(glob.glob(job["save_path"] + "*deploy*.onnx"))
    if len(found) != 1:
        sys.exit(f"amct save_model wrote no single deploy model at {job['save_path']}*deploy*.onnx: {found}")
    deploy = found[0]
summary = {"amct_version": str(getattr(amct, "__version__", "unknown")), "onnxruntime_version": ort.__version__,
           "batches": ran, "deploy_model": deploy}
with open(job["summary"], "w") as f:
    json.dump(summary, f, indent=2)
'''


class AmctError(RuntimeError):
    """AMCT did not produce a deploy model; the message names the logs."""


def calibration_batches(pixels: np.ndarray | None, input_size: tuple[int, ...], recipe: Recipe,
                        float_input: bool) -> list[np.ndarray]:
    """The calibration images as the ONNX graph takes them (the recipe's float32 normalisation, which AIPP does on
    the device, or the uint8 pixels a uint8 graph normalises itself), in batches of at most BATCH."""
    if pixels is None or not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 4 \
            or tuple(pixels.shape[1:]) != tuple(input_size) or len(pixels) == 0:
        got = "none" if pixels is None else f"{getattr(pixels, 'dtype', type(pixels).__name__)} " \
                                            f"{list(getattr(pixels, 'shape', []))}"
        raise ValueError(f"acl: int8 needs the calibration images as uint8 NCHW [N, {', '.join(map(str, input_size))}]"
                         f" with N >= 1, got {got}; run the calibrate stage (`omzoo calibrate`)")
    data = normalize(pixels, recipe) if float_input else np.ascontiguousarray(pixels)
    return [np.ascontiguousarray(b) for b in np.array_split(data, -(-len(data) // BATCH))]


def quantize(*, onnx: Path, batches: list[np.ndarray], work: Path, python: str, env: dict[str, str], cwd: Path,
             stem: str) -> dict[str, Any]:
    """Run AMCT on `onnx` with `batches` in `work` (config, record, batches, models, logs); return what happened:
    the deploy model's path and sha256, the calls' settings, the batches run, seconds. AmctError when it fails."""
    work.mkdir(parents=True, exist_ok=True)
    files = []
    for i, batch in enumerate(batches):
        path = work / f"calibration_{i:04d}.npy"
        np.save(path, batch, allow_pickle=False)
        files.append(str(path))
    job = {"model": str(onnx), "config": str(work / "config.json"), "modified": str(work / "modified_model.onnx"),
           "record": str(work / "scale_offset_record.txt"), "save_path": str(work / stem), "batches": files,
           "summary": str(work / "summary.json"), **SETTINGS}
    (work / "job.json").write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    script = work / "amct_quantize.py"
    script.write_text(SCRIPT, encoding="utf-8")
    argv = [python, str(script), str(work / "job.json")]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 3)
    (work / "amct.stdout").write_text(proc.stdout, encoding="utf-8")
    (work / "amct.stderr").write_text(proc.stderr, encoding="utf-8")
    summary_path = Path(job["summary"])
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    deploy = Path(summary.get("deploy_model", ""))
    if proc.returncode != 0 or not summary or not deploy.is_file() or deploy.stat().st_size == 0:
        missing = "amct_onnx" in proc.stderr and "No module named" in proc.stderr
        hint = (f"; {python} cannot import amct_onnx: install AMCT for ONNX (amct_onnx, shipped with the CANN "
                "toolkit) and onnxruntime into atc's Python, or set acl.python to one that has them") if missing else ""
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}, no deploy model"])[-1]
        raise AmctError(f"acl: AMCT int8 quantization failed for {stem} ({last}){hint}; logs: {work}/amct.*"
                        f"\n--- stdout tail ---\n{tail(proc.stdout)}\n--- stderr tail ---\n{tail(proc.stderr)}")
    return {"argv": argv, "returncode": proc.returncode, "seconds": seconds, "python": python,
            "calls": ["create_quant_config", "quantize_model", "onnxruntime calibration", "save_model"],
            "batch_num": len(files), "calibration_images": int(sum(len(b) for b in batches)), **SETTINGS,
            "batches": summary.get("batches", []), "amct_version": summary.get("amct_version", "unknown"),
            "onnxruntime_version": summary.get("onnxruntime_version", "unknown"),
            "deploy_model": str(deploy), "deploy_model_sha256": sha256_file(deploy)}


def drop_large(work: Path) -> None:
    """Remove the batches and models once atc has compiled the deploy model (the .om is the artefact); the config,
    the record, the job, the script and the logs stay, small, as provenance."""
    for pattern in LARGE:
        for path in work.glob(pattern):
            path.unlink(missing_ok=True)
