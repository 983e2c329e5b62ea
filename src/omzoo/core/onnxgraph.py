"""ONNX files as omzoo reads them: the graph's input (and a seeded one to feed it), its op histogram, and ONNX
Runtime's fp32 reference logits.

Every backend is judged against `reference_logits` (ORT, CPU, fp32) on the same pixels, so simplify, evaluate and
the tests share one definition of "the exported model's answer".

Every ONNX file omzoo reads (an argument of simplify, compile, predict, evaluate, diagnose; an artefact) is read
through `onnx_bytes`, omzoo.core.io.open_regular: a FIFO or a device is named as such, never opened for reading, and
a file above protobuf's 2 GiB limit is refused before a byte is read. Libraries get those bytes, never the path.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from omzoo.core import io
from omzoo.core.recipe import Recipe, normalize

if TYPE_CHECKING:
    import onnx

#: the largest ONNX file read: protobuf cannot parse a larger message (omzoo writes no external data)
MAX_ONNX_BYTES = 2 << 30


def random_input(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    """Seeded, never zeros: standard normal for float inputs, uniform 0..255 for uint8 pixels."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def onnx_bytes(path: str | Path) -> bytes:
    """The bytes of an ONNX file, read only when it is a regular file of at most MAX_ONNX_BYTES (io.open_regular)."""
    with io.open_regular(path, MAX_ONNX_BYTES, "ONNX file") as f:
        return f.read()


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """The ONNX model in the file at `path` (read by `onnx_bytes`); a file that is not one is named."""
    import onnx

    data = onnx_bytes(path)
    try:
        return onnx.load_model_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for a file that is not ONNX
        raise ValueError(f"{path}: not a readable ONNX file ({type(e).__name__}: {' '.join(str(e).split())})") \
            from None


def input_info(path: Path) -> tuple[str, list[int | None], np.dtype]:
    """Name, dims (None where symbolic, e.g. the batch) and numpy dtype of the graph's first real input."""
    import onnx

    graph = load_onnx(path).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not inputs:
        raise ValueError(f"{path}: the graph has no input")
    tensor = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return inputs[0].name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))


def op_histogram(path: Path) -> dict[str, int]:
    """How many nodes of each op type, most frequent first (what atc and onnxsim change is visible here)."""
    graph = load_onnx(path).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Run an ONNX file once on the CPU: the fp32 reference every backend is compared against."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes(path), providers=["CPUExecutionProvider"])
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
