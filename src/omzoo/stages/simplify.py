"""The `simplify` stage: onnxsim with the batch kept dynamic, checked against the raw graph in ORT."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core.io import atomic_files, atomic_write, json_bytes
from omzoo.core.onnxgraph import input_info, load_onnx, ort_logits, random_input

HELP = "simplify an ONNX file with onnxsim (batch kept dynamic), reporting node counts"
#: --info defaults to <out>.json (the CLI fills it in before it checks the outputs)
INFO_BESIDE_OUT = True


def simplify(src: Path, out: Path, check_batch: int = 2, seed: int = 0) -> dict[str, Any]:
    """onnxsim with the batch kept dynamic; falls back to the raw graph (recorded) if onnxsim fails.

    The outputs of both graphs are compared in onnxruntime on a seeded batch of `check_batch`, so a
    simplification that changed the numbers is caught here, not in the accuracy figures.
    """
    import onnx
    import onnxsim

    name, dims, dtype = input_info(src)
    model = load_onnx(src)
    before = len(model.graph.node)
    shape = [d or check_batch for d in dims]
    x = random_input(tuple(shape), dtype, seed)
    reference = ort_logits(src, x)
    if not np.isfinite(reference).all():
        raise ValueError(f"{src}: the exported graph gives non-finite outputs (NaN or inf) on random input; "
                         "check the checkpoint's weights")
    error = ""
    try:
        simplified, ok = onnxsim.simplify(model, test_input_shapes={name: shape})
        if not ok:
            raise RuntimeError("onnxsim's own output check failed")
    except Exception as e:  # noqa: BLE001 - onnxsim fails in many ways (docs/ascend.md §8); all mean "use raw"
        simplified, error = model, f"{type(e).__name__}: {e}"
    with atomic_write(out) as tmp:
        onnx.save(simplified, str(tmp))
    diff = float(np.abs(reference - ort_logits(out, x)).max())
    return {"nodes_before": before, "nodes_after": len(simplified.graph.node), "simplified": int(not error),
            "max_abs_diff": diff, "error": error}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="ONNX file from `omzoo export`")
    p.add_argument("--out", type=Path, required=True, help="simplified ONNX file to write")
    p.add_argument("--info", type=Path, help="write a JSON summary here (default: <out>.json)")


def run(args: argparse.Namespace) -> int:
    with atomic_files([args.out, args.info]) as (out, info_file):  # both or neither
        info = simplify(args.input, out)
        info_file.write_bytes(json_bytes(info))
    status = "simplified" if info["simplified"] else f"NOT simplified ({info['error']}); raw graph kept"
    print(f"{args.input.name}: {info['nodes_before']} -> {info['nodes_after']} nodes, {status}, "
          f"max |diff| {info['max_abs_diff']:.2e}")
    return 0
