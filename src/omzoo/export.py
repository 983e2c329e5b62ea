"""The `export` and `simplify` stages: checkpoint → ONNX (opset 11 by default) → onnxsim.

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


def load_model(model_id: str, checkpoint: Path, options: dict[str, Any] | None = None) -> torch.nn.Module:
    """Build the architecture (with registry options overridden by `options`) and load strictly."""
    model = zoo.get(model_id).build(**(options or {}))
    load_strict(model, checkpoint)
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
    return {"nodes": node_count(out), "ops": op_histogram(out), "opset": opset, "input_dtype": input_dtype}


def node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def op_histogram(path: Path) -> dict[str, int]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Run an ONNX file once on the CPU: the fp32 reference every backend is compared against."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def simplify(src: Path, out: Path, check_batch: int = 2, seed: int = 0) -> dict[str, Any]:
    """onnxsim with the batch kept dynamic; falls back to the raw graph (recorded) if onnxsim fails.

    The outputs of both graphs are compared in onnxruntime on a seeded batch of `check_batch`, so a
    simplification that changed the numbers is caught here, not in the accuracy figures.
    """
    import onnx
    import onnxsim

    model = onnx.load(str(src))
    before = len(model.graph.node)
    inp = model.graph.input[0]
    shape = [d.dim_value or check_batch for d in inp.type.tensor_type.shape.dim]
    elem = inp.type.tensor_type.elem_type
    rng = np.random.default_rng(seed)
    if elem == onnx.TensorProto.UINT8:
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    error = ""
    try:
        simplified, ok = onnxsim.simplify(model, test_input_shapes={inp.name: shape})
        if not ok:
            raise RuntimeError("onnxsim's own output check failed")
    except Exception as e:  # noqa: BLE001 - onnxsim fails in many ways (ASCEND.md §8); all mean "use raw"
        simplified, error = model, f"{type(e).__name__}: {e}"
    with atomic_write(out) as tmp:
        onnx.save(simplified, str(tmp))
    diff = float(np.abs(ort_logits(src, x) - ort_logits(out, x)).max())
    return {"nodes_before": before, "nodes_after": len(simplified.graph.node), "simplified": int(not error),
            "max_abs_diff": diff, "error": error}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--checkpoint", type=Path, required=True, help="published-container checkpoint")
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
    model = load_model(args.model, args.checkpoint, options)
    summary = export_onnx(model, spec, args.output, args.opset, args.input_dtype)
    write_json_atomic(args.info or args.output.with_suffix(".json"),
                      {"model": args.model, "options": options, **summary})
    print(f"{args.model}: {summary['nodes']} nodes, opset {args.opset}, {args.input_dtype} input -> {args.output}")
    return 0


SIMPLIFY_HELP = "simplify an ONNX file with onnxsim (batch kept dynamic), reporting node counts"


def add_simplify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="ONNX file from `omzoo export`")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--info", type=Path, help="write a JSON summary here (default: <output>.json)")


def run_simplify(args: argparse.Namespace) -> int:
    info = simplify(args.input, args.output)
    write_json_atomic(args.info or args.output.with_suffix(".json"), info)
    status = "simplified" if info["simplified"] else f"NOT simplified ({info['error']}); raw graph kept"
    print(f"{args.input.name}: {info['nodes_before']} -> {info['nodes_after']} nodes, {status}, "
          f"max |diff| {info['max_abs_diff']:.2e}")
    return 0
