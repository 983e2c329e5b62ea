"""The `compile` stage: one compiled artefact per (model, batch size) for the configured backend.

The artefact directory holds the backend's file plus `meta.json` (model, backend, batch size, input,
source hashes, runtime versions), which is all infer and bench need to load it again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from omzoo import zoo
from omzoo.backends.base import Backend, CompileSource, get_backend
from omzoo.checkpoints import file_sha256
from omzoo.io import write_json_atomic
from omzoo.params import backend_config, load_params

HELP = "compile a model for one batch size with the configured backend (onnxruntime, torch, acl)"


class ToolkitMismatch(ValueError):
    """This branch pins a toolkit version that is not the one installed: its numbers would be mislabelled."""


def check_toolkit(backend: Backend, expected: str) -> str:
    installed = backend.toolkit_version()
    if expected and not installed.startswith(str(expected)):
        raise ToolkitMismatch(f"params.yaml toolkit.version is {expected!r} but this machine has {backend.name} "
                              f"{installed}: check out the branch for {installed} or install {expected}")
    return installed


def compile_model(model_id: str, batch_size: int, out_dir: Path, params: dict[str, Any], onnx: Path | None,
                  checkpoint: Path | None) -> dict[str, Any]:
    name, options = backend_config(params)
    backend = get_backend(name, options)
    installed = check_toolkit(backend, str(params.get("toolkit", {}).get("version", "") or ""))
    spec = zoo.get(model_id)
    src = CompileSource(spec=spec, onnx=onnx, checkpoint=checkpoint, options=options)
    artefact = backend.compile(src, batch_size, out_dir)
    meta = {
        "model": model_id, "backend": name, "batch_size": batch_size, "artefact": artefact.name,
        "toolkit_version": installed, "options": options,
        "sources": {str(p): file_sha256(p) for p in (onnx, checkpoint) if p is not None},
    }
    write_json_atomic(out_dir / "meta.json", meta)
    return meta


def load_compiled(art_dir: Path, options: dict[str, Any] | None = None) -> tuple[Backend, dict[str, Any]]:
    """Open a compiled artefact directory: the backend named in its meta.json, loaded and ready to run."""
    meta_path = art_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{art_dir}: not a compiled artefact (no meta.json); run `omzoo compile` first")
    meta = json.loads(meta_path.read_text())
    backend = get_backend(meta["backend"], meta["options"] if options is None else options)
    backend.spec = zoo.get(meta["model"])
    backend.load(art_dir / meta["artefact"], meta["batch_size"])
    return backend, meta


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--bs", type=int, required=True, help="batch size to compile for")
    p.add_argument("--onnx", type=Path, help="ONNX file (onnxruntime, acl)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint (torch backend)")
    p.add_argument("--out", type=Path, required=True, help="artefact directory to write")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))


def run(args: argparse.Namespace) -> int:
    meta = compile_model(args.model, args.bs, args.out, load_params(args.params), args.onnx, args.checkpoint)
    print(f"{args.model} bs{args.bs}: {meta['backend']} {meta['toolkit_version']} -> {args.out / meta['artefact']}")
    return 0
