"""The `export` stage: checkpoint → ONNX (opset 11 by default), float32 or uint8 input.

Export uses the legacy TorchScript exporter (`dynamo=False`): since torch 2.9 the default dynamo exporter
ignores opsets below 18, and every Ascend toolchain of the guides wants opset 11. The batch axis stays
dynamic; names are the ones the Ascend guides used, so their atc command lines carry over.
With `--input-dtype uint8` the graph takes raw NCHW pixels and does the profile's /255 and mean/std itself,
in float32 and in the same order as omzoo.data.profiles.normalize, so the numbers are the same.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omzoo import zoo
from omzoo.checkpoints import load_strict
from omzoo.data.profiles import get_profile
from omzoo.io import atomic_write, write_json_atomic
from omzoo.params import load_params, model_options

HELP = "export a checkpoint to ONNX (opset 11, dynamic batch, float32 or uint8 input)"


class PixelInput(torch.nn.Module):
    """uint8 pixels in, the model's logits out: x/255, then (x - mean) / std, all in float32."""

    def __init__(self, model: torch.nn.Module, mean: tuple[float, ...] | None, std: tuple[float, ...] | None):
        super().__init__()
        self.model = model
        self.normalise = mean is not None
        if self.normalise:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        if self.normalise:
            x = (x - self.mean) / self.std
        return self.model(x)


def load_model(model_id: str, checkpoint: Path, options: dict[str, Any] | None = None,
               trust: bool = False) -> torch.nn.Module:
    """Build the architecture (with registry options overridden by `options`) and load strictly."""
    model = zoo.get(model_id).build(**(options or {}))
    load_strict(model, checkpoint, trust)
    return model


def export_onnx(model: torch.nn.Module, spec: zoo.ModelSpec, out: Path, opset: int = 11,
                input_dtype: str = "float32") -> dict[str, Any]:
    """Export `model` (already loaded) and return a summary: node count, op histogram, input dtype."""
    if input_dtype == "uint8":
        profile = get_profile(spec.profile)
        model = PixelInput(model, profile.mean, profile.std).eval()
        dummy = torch.randint(0, 256, (1, *spec.input_size), dtype=torch.uint8)
    elif input_dtype == "float32":
        dummy = torch.randn(1, *spec.input_size)
    else:
        raise ValueError(f"input dtype must be float32 or uint8, not {input_dtype!r}")
    with atomic_write(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation chatter
        torch.onnx.export(
            model.eval(), (dummy,), str(tmp), opset_version=opset, dynamo=False,
            input_names=[spec.input_name], output_names=[spec.output_name],
            dynamic_axes={spec.input_name: {0: "batch"}, spec.output_name: {0: "batch"}},
        )
    ops = op_histogram(out)
    return {"nodes": sum(ops.values()), "ops": ops, "opset": opset, "input_dtype": input_dtype}


def op_histogram(path: Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Run an ONNX file once on the CPU: the fp32 reference every backend is compared against."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--checkpoint", type=Path, required=True, help="published-container checkpoint")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="this file may run code: fully unpickle it if the safe unpickler refuses it (README Security)")
    p.add_argument("--output", type=Path, required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=11)
    p.add_argument("--input-dtype", choices=["float32", "uint8"], default="float32",
                   help="uint8: raw NCHW pixels in, normalisation inside the graph")
    p.add_argument("--options", default="{}", help='architecture options as JSON, e.g. \'{"nearest_resize": true}\'')
    p.add_argument("--params", type=Path, help="take the model's architecture options from this params file")
    p.add_argument("--info", type=Path, help="write a JSON summary here (default: <output>.json)")


def run(args: argparse.Namespace) -> int:
    spec = zoo.get(args.model)
    options = json.loads(args.options)
    if args.params:
        options = {**model_options(load_params(args.params), args.model), **options}
    model = load_model(args.model, args.checkpoint, options, args.trust_checkpoint)
    summary = export_onnx(model, spec, args.output, args.opset, args.input_dtype)
    write_json_atomic(args.info or args.output.with_suffix(".json"),
                      {"model": args.model, "options": options, **summary})
    print(f"{args.model}: {summary['nodes']} nodes, opset {args.opset}, {args.input_dtype} input -> {args.output}")
    return 0
