"""Every intermediate tensor of an onnxruntime artefact, for `omzoo diagnose`'s node-by-node comparison.

`intermediates` runs a copy of the graph (in memory; the artefact is never touched) with every node output added as
a graph output, unoptimised (ORT_DISABLE_ALL: each tensor of the graph as stored exists, nothing is fused away).
For an int8 QDQ artefact the graph run is the QDQ graph kept beside it (quantize.QDQ_GRAPH): it has the fp32
graph's tensor names, so each fp32 tensor is compared with the same name; QuantizeLinear/DequantizeLinear run as
ORT's float emulation there, which the artefact's fused integer kernels match closely (diagnose compares the final
logits of the artefact itself too). The QDQ pairing of names is onnxruntime.quantization.qdq_loss_debug's own
(create_activation_matching), so the tensor compared is the one the next node reads (after its QDQ).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.onnxruntime import _ort, _ort_reason
from omzoo.backends.onnxruntime.quantize import QDQ_GRAPH
from omzoo.core.onnxgraph import load_onnx

_FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
           "tensor(bfloat16)": None}
#: how diagnose.json names the pairing of an fp32 tensor with its int8 counterpart
MATCHING = "onnxruntime.quantization.qdq_loss_debug.create_activation_matching"
#: and of two graphs of the same precision (another revision's artefact): each tensor with its namesake
SAME_NAMES = "exact names, no QDQ pairing: the same precision on both sides"


def debug_graph(artefact: Path) -> Path:
    """The graph whose tensors compare with the fp32 graph's by name: the QDQ graph beside an int8 artefact, else
    the artefact itself."""
    qdq = Path(artefact).with_name(QDQ_GRAPH)
    return qdq if qdq.is_file() else Path(artefact)


def node_outputs(graph: Path) -> list[tuple[str, str, str]]:
    """(node name, op type, output tensor) of every node, in the graph's order (ONNX stores nodes topologically)."""
    model = load_onnx(graph)
    return [(n.name or f"{n.op_type}_{i}", n.op_type, out) for i, n in enumerate(model.graph.node) for out in n.output
            if out]


def _exposed(graph: Path) -> bytes:
    """The graph with every node output also a graph output (its type left to ORT's inference)."""
    from onnx import helper

    model = load_onnx(graph)
    have = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in have:
                model.graph.output.append(helper.make_empty_tensor_value_info(out))
                have.add(out)
    return model.SerializeToString()


def _session(artefact: Path, threads: int) -> Any:
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(_exposed(Path(artefact)), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own classes, all derived from Exception only
        raise ValueError(f"{artefact}: ONNX Runtime cannot load it with its tensors exposed ({_ort_reason(e)})") \
            from None


def collect(artefact: Path, batches: Iterable[np.ndarray], threads: int = 0) -> dict[str, list[np.ndarray]]:
    """Every float tensor of `artefact`'s graph (as float32), by tensor name, one array per batch (fed: the graph's
    input dtype and batch size), as qdq_loss_debug.collect_activations gives them. ValueError naming the file when
    ORT cannot load or run it."""
    session = _session(artefact, threads)
    floats = [o.name for o in session.get_outputs() if _FLOATS.get(o.type) is not None]
    name = session.get_inputs()[0].name
    out: dict[str, list[np.ndarray]] = {t: [] for t in floats}
    for batch in batches:
        try:
            values = session.run(floats, {name: batch})
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{artefact}: ONNX Runtime failed on a {batch.dtype} batch {list(batch.shape)} "
                             f"({_ort_reason(e)})") from None
        for tensor, value in zip(floats, values, strict=True):
            out[tensor].append(np.asarray(value, dtype=np.float32))
    return out


def intermediates(artefact: Path, batch: np.ndarray, threads: int = 0) -> dict[str, np.ndarray]:
    """Every float tensor of `artefact`'s graph on one fed batch, by tensor name (`collect` for one batch)."""
    return {t: v[0] for t, v in collect(artefact, [batch], threads).items()}


def matched(reference: dict[str, np.ndarray], other: dict[str, np.ndarray],
            pair_qdq: bool = True) -> dict[str, dict[str, Any]]:
    """For every tensor name of `reference` that `other` has: {"other": the tensor to compare, "qdq": True where it
    is the output of the tensor's own QuantizeLinear/DequantizeLinear pair, "pre_qdq": the tensor before it}.

    The QDQ pairs are qdq_loss_debug.create_activation_matching's: `X` → `X_QuantizeLinear_Input`/`X` or
    `X`/`X_DequantizeLinear_Output`; a tensor without a pair (not quantized) compares as it is. `pair_qdq` False
    (`reference` is a QDQ graph too, SAME_NAMES): every tensor compares with its namesake, since pairing would set
    a tensor before its QDQ against the other's after it."""
    from onnxruntime.quantization.qdq_loss_debug import create_activation_matching

    pairs = (create_activation_matching({k: [v] for k, v in other.items()}, {k: [v] for k, v in reference.items()})
             if pair_qdq else {})
    out: dict[str, dict[str, Any]] = {}
    for tensor in reference:
        pair = pairs.get(tensor)
        if pair is not None and "float" in pair:
            out[tensor] = {"other": pair["post_qdq"][0], "qdq": True, "pre_qdq": pair["pre_qdq"][0]}
        elif tensor in other:
            out[tensor] = {"other": other[tensor], "qdq": False, "pre_qdq": None}
    return out
