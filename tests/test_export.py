"""`omzoo export`: every registry model's ONNX graph (float32 or uint8 input, opset 11, dynamic batch, the registry's
names) gives torch's logits in ONNX Runtime; the input dtype comes from params.yaml or `-S`, and the JSON summary
is written next to the graph or where --info says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from archtools import tol_at_logit_std4

from omzoo import cli
from omzoo.core import zoo
from omzoo.core.onnxgraph import op_histogram, ort_logits
from omzoo.stages.export import export_onnx

MODEL = "ran92_cifar10"
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
ELEM = {"float32": onnx.TensorProto.FLOAT, "uint8": onnx.TensorProto.UINT8}


def test_every_registry_model_exports_to_torchs_logits(exported) -> None:
    """conftest.py `exported`: the float32 graph on normalised pixels and the uint8 graph on raw ones, within the
    fp32 tolerance of docs/models.md §0.4."""
    p = exported.published
    tol = tol_at_logit_std4(p.logits)
    assert np.abs(ort_logits(exported.float32, p.x) - p.logits).max() < tol
    assert np.abs(ort_logits(exported.uint8, p.pixels) - p.logits).max() < tol
    for dtype, path in (("float32", exported.float32), ("uint8", exported.uint8)):
        summary = exported.summaries[dtype]
        assert summary["opset"] == 11 and summary["input_dtype"] == dtype
        assert summary["ops"] == op_histogram(path) and summary["nodes"] == sum(summary["ops"].values())
        graph = onnx.load(str(path)).graph
        (inp,), (out,) = graph.input, graph.output
        assert inp.name == p.spec.input_name and out.name == p.spec.output_name
        assert inp.type.tensor_type.elem_type == ELEM[dtype]
        assert inp.type.tensor_type.shape.dim[0].dim_param and out.type.tensor_type.shape.dim[0].dim_param


def test_the_input_dtype_is_params_or_one_override(tmp_path: Path, compiled: Path, capsys) -> None:
    """`export ... -S export.input_dtype=float32` needs no params file of one's own and gives a float32 graph; the
    repository's params.yaml gives uint8. The summary goes next to --out by default."""
    for dtype in ("float32", "uint8"):
        out = tmp_path / f"{dtype}.onnx"
        argv = ["export", MODEL, "--checkpoint", str(compiled / "w.pth"), "--out", str(out), "--params", str(PARAMS)]
        assert cli.main(argv + (["-S", f"export.input_dtype={dtype}"] if dtype == "float32" else [])) == 0
        (graph_input,) = onnx.load(str(out)).graph.input
        assert graph_input.type.tensor_type.elem_type == ELEM[dtype]
        info = json.loads(out.with_suffix(".json").read_text())
        assert info["input_dtype"] == dtype and info["model"] == MODEL and info["opset"] == 11
        assert info["options"] == {**zoo.get(MODEL).options, "nearest_resize": False}  # params.yaml's
        assert capsys.readouterr().out == f"{MODEL}: {info['nodes']} nodes, opset 11, {dtype} input -> {out}\n"


def test_the_summary_goes_where_info_says(tmp_path: Path, compiled: Path) -> None:
    out, info = tmp_path / "m.onnx", tmp_path / "reports" / "export.json"
    assert cli.main(["export", MODEL, "--checkpoint", str(compiled / "w.pth"), "--out", str(out), "--info", str(info),
                     "--params", str(PARAMS), "-S", "export.opset=13"]) == 0
    assert json.loads(info.read_text())["opset"] == 13 and onnx.load(str(out)).opset_import[0].version == 13
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "reports"]


def test_an_unknown_input_dtype_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="export.input_dtype must be float32 or uint8, not 'int8'"):
        export_onnx(torch.nn.Identity(), zoo.get(MODEL), tmp_path / "m.onnx", input_dtype="int8")
    assert list(tmp_path.iterdir()) == []
