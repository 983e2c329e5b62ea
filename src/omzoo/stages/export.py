"""The `export` stage: checkpoint → ONNX (opset 11 by default), float32 or uint8 input.

Export uses the legacy TorchScript exporter (`dynamo=False`): since torch 2.9 the default dynamo exporter
ignores opsets below 18, and every Ascend toolchain of the guides wants opset 11. The batch axis stays
dynamic; names are the ones the Ascend guides used, so their atc command lines carry over.
With `input_dtype: uint8` the graph takes raw NCHW pixels and does the recipe's /255 and mean/std itself
(omzoo.core.model.PixelInput), so the numbers are those of the float32 graph fed normalised pixels.
Paths come from the command line; `opset`, `input_dtype` and the model's options from params.yaml (by hand:
`-S export.input_dtype=float32`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, Literal

import torch

from omzoo.core.io import atomic_files, atomic_write, json_bytes
from omzoo.core.model import PixelInput, load_model
from omzoo.core.onnxgraph import op_histogram
from omzoo.core.params import ExportConfig, load_params
from omzoo.core.zoo import ModelSpec

HELP = "export a checkpoint to ONNX (opset from params, dynamic batch, float32 or uint8 input)"
#: --info defaults to <out>.json (the CLI fills it in before it checks the outputs)
INFO_BESIDE_OUT = True


def export_onnx(model: torch.nn.Module, spec: ModelSpec, out: Path, opset: int = ExportConfig.opset,
                input_dtype: Literal["float32", "uint8"] | str = ExportConfig.input_dtype) -> dict[str, Any]:
    """Export `model` (already loaded) and return a summary: node count, op histogram, input dtype."""
    if input_dtype == "uint8":
        model = PixelInput(model, spec.recipe.mean, spec.recipe.std).eval()
        dummy = torch.randint(0, 256, (1, *spec.input_size), dtype=torch.uint8)
    elif input_dtype == "float32":
        dummy = torch.randn(1, *spec.input_size)
    else:
        raise ValueError(f"export.input_dtype must be float32 or uint8, not {input_dtype!r}")
    with atomic_write(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation chatter
        torch.onnx.export(
            model.eval(), (dummy,), str(tmp), opset_version=opset, dynamo=False,
            input_names=[spec.input_name], output_names=[spec.output_name],
            dynamic_axes={spec.input_name: {0: "batch"}, spec.output_name: {0: "batch"}},
        )
    ops = op_histogram(out)
    return {"nodes": sum(ops.values()), "ops": ops, "opset": opset, "input_dtype": input_dtype}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--checkpoint", type=Path, required=True, help="published-container checkpoint")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="this file may run code: fully unpickle it if the safe unpickler refuses it (README Security)")
    p.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--info", type=Path, help="write a JSON summary here (default: <out>.json)")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = params.typed(ExportConfig, "export")
    spec = params.spec(args.model)
    model = load_model(spec, args.checkpoint, args.trust_checkpoint)
    with atomic_files([args.out, args.info]) as (out, info):  # both or neither
        summary = export_onnx(model, spec, out, cfg.opset, cfg.input_dtype)
        info.write_bytes(json_bytes({"model": args.model, "options": spec.options, **summary}))
    print(f"{args.model}: {summary['nodes']} nodes, opset {cfg.opset}, {cfg.input_dtype} input -> {args.out}")
    return 0
