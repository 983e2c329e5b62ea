"""`omzoo simplify`: onnxsim folds what it can, the batch stays dynamic and the outputs stay the same, on a tiny
graph and on every registry model's export; the JSON summary is written; onnxsim failing keeps the raw graph
(said so), and a graph that gives NaN is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from archtools import tol_at_logit_std4
from cli_helpers import tiny_onnx
from onnx import helper, numpy_helper

from omzoo import cli
from omzoo.core.onnxgraph import ort_logits
from omzoo.stages.simplify import simplify


def _foldable(path: Path) -> Path:
    """tiny_onnx with its weight computed at run time as w * 1: a Mul that onnxsim folds into a constant."""
    model = onnx.load(str(tiny_onnx(path)))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.ones((3, 10), np.float32), "one"))
    graph.node.insert(0, helper.make_node("Mul", ["w", "one"], ["w1"]))
    graph.node[-1].input[1] = "w1"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _pixels(batch: int) -> np.ndarray:
    return np.random.default_rng(batch).integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8)


def test_simplify_folds_keeps_the_outputs_and_writes_its_json(tmp_path: Path, capsys) -> None:
    src, out = _foldable(tmp_path / "m.onnx"), tmp_path / "m.sim.onnx"
    assert cli.main(["simplify", str(src), "--out", str(out)]) == 0
    info = json.loads((tmp_path / "m.sim.json").read_text())  # default: next to --out
    assert info == {"nodes_before": 4, "nodes_after": 3, "simplified": 1, "max_abs_diff": 0.0, "error": ""}
    assert capsys.readouterr().out == "m.onnx: 4 -> 3 nodes, simplified, max |diff| 0.00e+00\n"
    graph = onnx.load(str(out)).graph
    assert "Mul" not in [n.op_type for n in graph.node]
    assert graph.input[0].name == "image" and graph.input[0].type.tensor_type.shape.dim[0].dim_param
    for batch in (1, 5):  # the batch stays dynamic: any batch runs and gives the raw graph's outputs
        np.testing.assert_array_equal(ort_logits(out, _pixels(batch)), ort_logits(src, _pixels(batch)))


def test_info_goes_where_asked(tmp_path: Path) -> None:
    src, info = tiny_onnx(tmp_path / "m.onnx"), tmp_path / "reports" / "simplify.json"
    assert cli.main(["simplify", str(src), "--out", str(tmp_path / "s.onnx"), "--info", str(info)]) == 0
    assert json.loads(info.read_text())["nodes_before"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "reports", "s.onnx"]


def test_an_onnxsim_failure_keeps_the_raw_graph_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys) -> None:
    import onnxsim

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported op")

    monkeypatch.setattr(onnxsim, "simplify", broken)
    src, out = _foldable(tmp_path / "m.onnx"), tmp_path / "m.sim.onnx"
    assert cli.main(["simplify", str(src), "--out", str(out)]) == 0
    info = json.loads((tmp_path / "m.sim.json").read_text())
    assert info["simplified"] == 0 and info["error"] == "RuntimeError: unsupported op"
    assert info["nodes_after"] == info["nodes_before"] == 4
    assert "NOT simplified (RuntimeError: unsupported op); raw graph kept" in capsys.readouterr().out
    assert onnx.load(str(out)) == onnx.load(str(src))


def test_a_graph_that_gives_nan_is_refused_before_writing(tmp_path: Path) -> None:
    src = tiny_onnx(tmp_path / "nan.onnx", weight=float("nan"))
    with pytest.raises(ValueError, match=r"nan\.onnx: the exported graph gives non-finite outputs"):
        simplify(src, tmp_path / "s.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.onnx"]


def test_every_registry_model_simplifies_to_the_same_logits(exported, tmp_path: Path) -> None:
    """conftest.py `exported`'s uint8 graph: within the fp32 tolerance of docs/models.md §0.4, names and the
    dynamic batch kept, never more nodes."""
    spec, logits = exported.published.spec, exported.published.logits
    info = simplify(exported.uint8, tmp_path / "u8.sim.onnx")
    assert info["simplified"] == 1 and info["max_abs_diff"] < tol_at_logit_std4(logits)
    assert info["nodes_after"] <= info["nodes_before"]
    sim = onnx.load(str(tmp_path / "u8.sim.onnx"))
    assert sim.graph.input[0].name == spec.input_name and sim.graph.output[0].name == spec.output_name
    assert sim.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # batch stays dynamic
