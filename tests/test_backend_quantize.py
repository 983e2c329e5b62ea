"""int8 (and fp16) in the onnxruntime backend: static quantization of the fixed-batch graph, calibrated on the
calibration pixels through the recipe, with the `precision:` settings; the artefact loads and runs, its precision
record says how it was made, and what cannot be made fails in one line naming why."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from quant_helpers import pixels, tiny_convnet

from omzoo.backends.base import CompileSource
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.backends.onnxruntime import quantize as q
from omzoo.core import zoo

SPEC = zoo.get("ran92_cifar10")
RECORD_KEYS = {"precision", "quant_format", "activations", "weights", "per_channel", "reduce_range",
               "reduce_range_reason", "calibration_method", "calibration_images", "opset"}


def int8(tmp_path: Path, bs: int = 4, calibration: np.ndarray | None = None, name: str = "art",
         **settings) -> tuple[OrtBackend, Path]:
    backend = OrtBackend({"threads": 1})
    src = CompileSource(spec=SPEC, onnx=tiny_convnet(tmp_path / "m.onnx", SPEC), precision="int8",
                        calibration=pixels(SPEC, 10) if calibration is None else calibration, quantization=settings)
    return backend, backend.compile(src, bs, tmp_path / name)


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_qdq_int8_compiles_loads_and_runs(tmp_path: Path) -> None:
    backend, art = int8(tmp_path)
    record = backend.precision_record()
    backend.load(art, 4, SPEC)
    logits = backend.run(backend.feed(pixels(SPEC, 4, seed=5)))
    assert logits.shape == (4, SPEC.num_classes) and np.isfinite(logits).all()
    kept = ops(art.parent / q.QDQ_GRAPH)
    assert kept["QuantizeLinear"] and kept["DequantizeLinear"]  # the QDQ graph, kept for diagnose
    assert set(ops(art)) & {"QuantizeLinear", "DequantizeLinear", "QLinearConv"}  # the artefact: still quantized
    assert set(record) >= RECORD_KEYS
    assert {k: record[k] for k in RECORD_KEYS - {"reduce_range", "reduce_range_reason"}} == {
        "precision": "int8", "quant_format": "QDQ", "activations": "int8", "weights": "int8", "per_channel": True,
        "calibration_method": "MinMax", "calibration_images": 10, "opset": 13}
    assert (record["reduce_range"], record["reduce_range_reason"]) == q.resolve_reduce_range("auto")
    assert all(isinstance(v, str | int | float | bool) for v in record.values())
    assert backend.describe()["precision"] == "int8"
    assert onnx.load(str(art.parent / q.QDQ_GRAPH)).opset_import[0].version == 13


def test_qoperator_uint8_per_tensor_entropy(tmp_path: Path) -> None:
    backend, art = int8(tmp_path, quant_format="QOperator", activations="uint8", per_channel=False,
                        calibration_method="Entropy", reduce_range=True)
    assert ops(art)["QLinearConv"]
    assert not (art.parent / q.QDQ_GRAPH).exists()  # only QDQ keeps the fp32 names diagnose compares by
    assert backend.precision_record() | {"preprocess": ""} == {
        "precision": "int8", "quant_format": "QOperator", "activations": "uint8", "weights": "int8",
        "per_channel": False, "reduce_range": True, "reduce_range_reason": "set in params.yaml precision.reduce_range",
        "calibration_method": "Entropy", "calibration_images": 10, "opset": 13, "opset_exported": 11,
        "preprocess": ""}
    backend.load(art, 4, SPEC)
    assert np.isfinite(backend.run(backend.feed(pixels(SPEC, 4)))).all()


def test_a_short_calibration_is_padded_to_the_batch(tmp_path: Path) -> None:
    backend, art = int8(tmp_path, bs=8, calibration=pixels(SPEC, 3), calibration_method="Percentile")
    assert backend.precision_record()["calibration_images"] == 3
    backend.load(art, 8, SPEC)
    assert backend.run(backend.feed(pixels(SPEC, 8))).shape == (8, 10)


def test_quantization_is_deterministic(tmp_path: Path) -> None:
    _, first = int8(tmp_path, name="a")
    _, second = int8(tmp_path, name="b")
    for name in ("model.onnx", q.QDQ_GRAPH):
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes()


def test_reduce_range_auto_follows_vnni(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert q.resolve_reduce_range("auto", set()) == (True, q.resolve_reduce_range("auto", {"sse4_2"})[1])
    assert q.resolve_reduce_range("auto", set())[1].startswith("auto: CPU lacks VNNI")
    assert q.resolve_reduce_range("auto", {"avx512_vnni"}) == (False, "auto: CPU has VNNI (avx512_vnni)")
    assert q.resolve_reduce_range("auto", {"amx_int8"})[0] is False
    assert q.resolve_reduce_range(False, set()) == (False, "set in params.yaml precision.reduce_range")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx_vnni\n\nprocessor\t: 1\n")
    assert q.cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "avx_vnni"}
    assert q.cpu_flags(tmp_path / "absent") == set()
    monkeypatch.setattr(q, "cpu_flags", lambda: {"avx2"})  # a CPU without VNNI: 7-bit weights
    backend, _ = int8(tmp_path)
    assert backend.precision_record()["reduce_range"] is True
    assert backend.precision_record()["reduce_range_reason"].startswith("auto: CPU lacks VNNI")


def test_fp16_is_refused_on_the_cpu_in_one_line(tmp_path: Path) -> None:
    backend = OrtBackend({"providers": ["CPUExecutionProvider"]})
    backend.check_precision("int8")
    backend.check_precision("fp32")
    with pytest.raises(ValueError, match="runs fp16 only on a CUDA or TensorRT provider") as e:
        backend.check_precision("fp16")
    assert "\n" not in str(e.value) and "CPUExecutionProvider" in str(e.value) and "precisions:" in str(e.value)
    with pytest.raises(ValueError, match="fp16 only"):
        backend.compile(CompileSource(spec=SPEC, onnx=tiny_convnet(tmp_path / "m.onnx", SPEC), precision="fp16"), 1,
                        tmp_path / "art")
    with pytest.raises(ValueError, match="cannot run precision 'bf16'"):
        backend.check_precision("bf16")


@pytest.mark.parametrize("calibration", [None, np.zeros((0, 3, 32, 32), np.uint8)])
def test_an_empty_calibration_is_refused_naming_the_model(tmp_path: Path, calibration: np.ndarray | None) -> None:
    backend = OrtBackend({"threads": 1})
    src = CompileSource(spec=SPEC, onnx=tiny_convnet(tmp_path / "m.onnx", SPEC), precision="int8",
                        calibration=calibration)
    with pytest.raises(ValueError, match=r"^ran92_cifar10: int8 needs calibration images") as e:
        backend.compile(src, 4, tmp_path / "art")
    assert "\n" not in str(e.value)


def test_calibration_of_another_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ran92_cifar10: calibration pixels must be uint8 \[N, 3, 32, 32\]"):
        int8(tmp_path, calibration=np.zeros((2, 3, 16, 16), np.uint8))


def test_ran92_int8(compiled: Path, tmp_path: Path) -> None:
    """The real RAN-92 export (random weights): 8 calibration images at batch 4, run on others."""
    backend = OrtBackend({"threads": 2})
    src = CompileSource(spec=SPEC, onnx=compiled / "m.onnx", precision="int8", calibration=pixels(SPEC, 8))
    start = time.perf_counter()
    art = backend.compile(src, 4, tmp_path / "art")
    print(f"ran92 int8 compile: {time.perf_counter() - start:.1f} s")
    backend.load(art, 4, SPEC)
    logits = backend.run(backend.feed(pixels(SPEC, 4, seed=3)))
    assert logits.shape == (4, 10) and np.isfinite(logits).all()
