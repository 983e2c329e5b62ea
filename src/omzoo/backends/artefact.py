"""Compiled artefact directories: write one for (model, batch size, backend), and open one again.

The directory holds the backend's file plus `meta.json` (model, its options, backend and options, batch size,
precision and how it was made, the installed toolkit version, source hashes):
all infer, bench and evaluate need to load it, whichever backend
made it. It is written into a temporary directory and swapped in whole, so a failed or killed compile leaves
the previous artefact untouched and never a half-written one; a non-empty folder without `meta.json` (not one of
ours) is never replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omzoo.backends.base import Backend, CompileSource, get_backend
from omzoo.backends.checks import version_matches
from omzoo.core import zoo
from omzoo.core.io import atomic_dir, sha256_file, write_json_atomic
from omzoo.core.params import REFERENCE
from omzoo.core.provenance import FINGERPRINT
from omzoo.data import calibration as calibrated

META = "meta.json"


class ToolkitMismatch(ValueError):
    """This branch pins a toolkit version that is not the one installed: its numbers would be mislabelled."""


def check_toolkit(backend: Backend, pinned: str) -> str:
    """The installed toolkit version, or ToolkitMismatch when the branch pins another one."""
    installed = backend.toolkit_version()
    if pinned and not version_matches(pinned, installed):
        raise ToolkitMismatch(f"params.yaml toolkit.version is {pinned!r} but this machine has {backend.name} "
                              f"{installed}: check out the branch for {installed} or install {pinned}")
    return installed


def compile_artefact(spec: zoo.ModelSpec, batch_size: int, out_dir: Path, backend_name: str,
                     options: dict[str, Any], pinned: str = "", onnx: Path | None = None,
                     checkpoint: Path | None = None, toolkit: Path | None = None, precision: str = REFERENCE,
                     calibration: Path | None = None) -> dict[str, Any]:
    """Compile `spec` for `batch_size` at `precision` with a backend into `out_dir` (replaced only on success); its
    meta. `toolkit`: the toolkit stage's file, which must name this host's toolkit (Backend.checked_fingerprint);
    `calibration`: the calibrate stage's folder, which a calibrated precision (int8) needs."""
    backend = get_backend(backend_name, options)
    backend.check_precision(precision)
    installed = check_toolkit(backend, pinned)
    fingerprint = backend.checked_fingerprint(toolkit)
    source = CompileSource(spec=spec, onnx=onnx, checkpoint=checkpoint, options=options, precision=precision)
    if precision in calibrated.CALIBRATED:
        if calibration is None:
            raise ValueError(f"{spec.id}: precision {precision} is calibrated; give the calibrate stage's folder "
                             "(--calibration)")
        source.calibration, settings = calibrated.read(calibration)
        if precision not in settings.get("precisions", []) or not len(source.calibration):
            raise ValueError(f"{calibration}: holds no {precision} calibration images for {spec.id}; add {precision} "
                             "to `precisions:` and run `omzoo calibrate` (dvc repro does both)")
        source.quantization = dict(settings["quantization"])
    backend.precision = precision
    with atomic_dir(out_dir, "compiled") as tmp:  # never replaces a folder that is not an earlier output
        artefact = backend.compile(source, batch_size, tmp)
        meta = {"model": spec.id, "model_options": spec.options, "backend": backend_name, "options": options,
                "batch_size": batch_size, "precision": precision, "precision_record": backend.precision_record(),
                "artefact": artefact.name, "toolkit_version": installed, FINGERPRINT: fingerprint,
                "sources": {str(p): sha256_file(p) for p in (onnx, checkpoint) if p is not None}}
        write_json_atomic(tmp / META, meta)
    return meta


def read_meta(art_dir: Path) -> dict[str, Any]:
    path = Path(art_dir) / META
    if not path.is_file():
        raise FileNotFoundError(f"{art_dir}: not a compiled artefact (no {META}); run `omzoo compile` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); compile again") from None


def load_compiled(art_dir: Path, options: dict[str, Any] | None = None) -> tuple[Backend, dict[str, Any]]:
    """Open a compiled artefact directory: the backend named in its meta.json, loaded and ready to run."""
    meta = read_meta(art_dir)
    backend = get_backend(meta["backend"], meta["options"] if options is None else options)
    backend.precision = str(meta.get("precision", REFERENCE))  # an artefact from before precisions is fp32
    backend.check_precision(backend.precision)
    spec = zoo.get(meta["model"]).with_options(meta.get("model_options"))
    backend.load(Path(art_dir) / meta["artefact"], meta["batch_size"], spec)
    return backend, meta
