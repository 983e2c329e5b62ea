"""ONNX files as omzoo reads them: the graph's input (and a seeded one to feed it), its op histogram, and ONNX
Runtime's fp32 reference logits.

Every backend is judged against `reference_logits` (ORT, CPU, fp32) on the same pixels, so simplify, evaluate and
the tests share one definition of "the exported model's answer".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from omzoo.core.recipe import Recipe, normalize


def random_input(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    """Seeded, never zeros: standard normal for float inputs, uniform 0..255 for uint8 pixels."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def input_info(path: Path) -> tuple[str, list[int | None], np.dtype]:
    """Name, dims (None where symbolic, e.g. the batch) and numpy dtype of the graph's first real input."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a file that is not ONNX
        raise ValueError(f"{path}: not a readable ONNX file ({type(e).__name__}: {e})") from e
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ValueError(f"{path}: the graph has no input")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return inputs[0].name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))


def op_histogram(path: Path) -> dict[str, int]:
    """How many nodes of each op type, most frequent first (what atc and onnxsim change is visible here)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Run an ONNX file once on the CPU: the fp32 reference every backend is compared against."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def as_input(pixels: np.ndarray, recipe: Recipe, dtype: np.dtype) -> np.ndarray:
    """Shard pixels as a graph with a `dtype` input takes them: as-is when uint8, else the recipe's normalisation."""
    return np.ascontiguousarray(pixels) if dtype == np.uint8 else normalize(pixels, recipe)


def feed(path: Path, pixels: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Shard pixels as the graph at `path` takes them."""
    return as_input(pixels, recipe, input_info(path)[2])


def reference_logits(path: Path, pixels: np.ndarray, recipe: Recipe) -> np.ndarray:
    """ONNX Runtime CPU fp32 logits of `path` on uint8 pixels."""
    return ort_logits(path, feed(path, pixels, recipe))
