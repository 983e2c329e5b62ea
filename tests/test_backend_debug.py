"""Intermediate tensors of an onnxruntime artefact: every float node output, by name, in a copy of the graph; the
QDQ graph beside an int8 artefact; and the pairing of fp32 tensors with their QDQ counterparts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from quant_helpers import pixels, tiny_convnet

from omzoo.backends.base import CompileSource
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.backends.onnxruntime.debug import collect, debug_graph, intermediates, matched, node_outputs
from omzoo.backends.onnxruntime.quantize import QDQ_GRAPH
from omzoo.core import zoo

SPEC = zoo.get("ran92_cifar10")


def compiled(tmp_path: Path, precision: str = "fp32") -> Path:
    backend = OrtBackend({"threads": 1})
    src = CompileSource(spec=SPEC, onnx=tiny_convnet(tmp_path / "m.onnx", SPEC), precision=precision,
                        calibration=pixels(SPEC, 8))
    return backend.compile(src, 2, tmp_path / precision)


def test_every_float_node_output_of_the_artefact(tmp_path: Path) -> None:
    art = compiled(tmp_path)
    before = art.read_bytes()
    x = pixels(SPEC, 2, seed=1)
    acts = intermediates(art, x)
    tensors = [t for _, _, t in node_outputs(art)]
    assert set(acts) == set(tensors)  # Cast's output is float too; nothing else in this graph is not
    assert acts["class"].shape == (2, 10) and acts["/Div_output_0"].dtype == np.float32
    assert np.allclose(acts["/Div_output_0"], x / 255.0)
    assert art.read_bytes() == before  # a copy was run, never the artefact
    parts = collect(art, [x, x])
    assert [len(v) for v in parts.values()] == [2] * len(parts)
    assert debug_graph(art) == art


def test_the_qdq_graph_pairs_with_the_fp32_names(tmp_path: Path) -> None:
    ref, art = compiled(tmp_path), compiled(tmp_path, "int8")
    assert debug_graph(art) == art.with_name(QDQ_GRAPH)
    x = pixels(SPEC, 2, seed=1)
    pairs = matched(intermediates(ref, x), intermediates(debug_graph(art), x))
    assert pairs["/Div_output_0"]["qdq"] and pairs["/Div_output_0"]["pre_qdq"] is not None
    assert not pairs["/Cast_output_0"]["qdq"]
    assert "class" in pairs


def test_a_broken_file_fails_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07")
    with pytest.raises(ValueError, match="bad.onnx: ONNX Runtime cannot load it"):
        intermediates(bad, pixels(SPEC, 1))
