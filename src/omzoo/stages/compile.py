"""The `compile` stage: one compiled artefact per (model, batch size) for the configured backend.

Paths come from the command line; the backend, its section, the toolkit pin and the model's options from
params.yaml; the precision from the command line (dvc.yaml's matrix over `precisions:`), int8's calibration images
and settings from the calibrate stage's folder. The artefact directory (omzoo.backends.artefact) holds the backend's
file plus `meta.json`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omzoo.backends.artefact import compile_artefact
from omzoo.backends.base import backend_names
from omzoo.core.params import PRECISIONS, REFERENCE, batch_size, load_params

HELP = f"compile a model for one batch size with the configured backend ({', '.join(backend_names())})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--bs", type=batch_size, required=True, help="batch size to compile for")
    p.add_argument("--onnx", type=Path, help="the simplified ONNX file, for a backend that compiles ONNX")
    p.add_argument("--checkpoint", type=Path, help="the checkpoint, for a backend that runs the PyTorch model")
    p.add_argument("--precision", choices=PRECISIONS, default=REFERENCE, help="what to compile: one of `precisions:`")
    p.add_argument("--calibration", type=Path, help="the calibrate stage's folder (images and settings), for int8")
    p.add_argument("--out", type=Path, required=True, help="artefact directory to write")
    p.add_argument("--toolkit", type=Path, help="the toolkit stage's file (metrics/toolkit.json): must name this "
                   "host's toolkit; its hash goes into meta.json")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    name, options = params.backend
    meta = compile_artefact(params.spec(args.model), args.bs, args.out, name, options, params.toolkit_version,
                            args.onnx, args.checkpoint, args.toolkit, args.precision, args.calibration)
    print(f"{args.model} bs{args.bs} {args.precision}: {meta['backend']} {meta['toolkit_version']} -> "
          f"{args.out / meta['artefact']}")
    return 0
