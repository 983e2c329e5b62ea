"""The onnxruntime backend on graphs built here with onnx.helper (a global average pool and a linear head): compile
fixes the batch and saves ORT's optimised graph, load checks the graph against the registry entry, run gives the
numpy reference's logits, and describe(), the threads and optimisation-level options and the host checks say what
was used."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from omzoo.backends.base import DESCRIBE_KEYS, CompileSource, get_backend
from omzoo.backends.checks import HostPlan, usable_cores
from omzoo.backends.onnxruntime import OrtBackend, _ort_reason
from omzoo.core import zoo
from omzoo.core.errors import BackendUnavailable
from omzoo.core.provenance import cpu_model
from omzoo.core.recipe import normalize

RNG = np.random.default_rng(0)


def head(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The linear head's weights and bias for `classes` logits (seeded, so the graph and the reference agree)."""
    rng = np.random.default_rng(classes)
    return rng.standard_normal((3, classes)).astype(np.float32), rng.standard_normal(classes).astype(np.float32)


def pool_head(path: Path, spec: zoo.ModelSpec, uint8: bool = False, batch: int | str = "N") -> Path:
    """`spec`'s input → (uint8: Cast, /255) → mean over H, W → x·W + b: [N, classes] logits."""
    c, h, w = spec.input_size
    name, out = spec.input_name, spec.output_name
    weights, bias = head(spec.num_classes)
    nodes, inits = [], [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")]
    x = name
    if uint8:
        nodes += [helper.make_node("Cast", [name], ["f"], to=TensorProto.FLOAT),
                  helper.make_node("Div", ["f", "k255"], ["scaled"])]
        inits.append(numpy_helper.from_array(np.array(255.0, np.float32), "k255"))
        x = "scaled"
    nodes += [helper.make_node("ReduceMean", [x], ["pooled4"], axes=[2, 3], keepdims=1),
              helper.make_node("Flatten", ["pooled4"], ["pooled"], axis=1),
              helper.make_node("MatMul", ["pooled", "W"], ["mm"]),
              helper.make_node("Add", ["mm", "B"], [out])]
    graph = helper.make_graph(
        nodes, "pool_head",
        [helper.make_tensor_value_info(name, TensorProto.UINT8 if uint8 else TensorProto.FLOAT, [batch, c, h, w])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, spec.num_classes])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def reference(pixels: np.ndarray, spec: zoo.ModelSpec) -> np.ndarray:
    weights, bias = head(spec.num_classes)
    return normalize(pixels, spec.recipe).mean(axis=(2, 3)) @ weights + bias


def pixels_for(spec: zoo.ModelSpec, n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, *spec.input_size), dtype=np.uint8)


def compiled(tmp_path: Path, spec: zoo.ModelSpec, bs: int, uint8: bool = False, **options) -> OrtBackend:
    backend = OrtBackend({"threads": 1, **options})
    src = CompileSource(spec=spec, onnx=pool_head(tmp_path / "m.onnx", spec, uint8))
    art = backend.compile(src, bs, tmp_path / "art")
    backend.load(art, bs, spec)
    return backend


# --------------------------------------------------------------------------- compile, load, run


@pytest.mark.parametrize(("model", "uint8"), [("ran92_cifar10", False), ("ran92_cifar10", True),
                                              ("scnet50_v1d", False)])
def test_compile_load_run_matches_the_reference(tmp_path: Path, model: str, uint8: bool) -> None:
    spec = zoo.get(model)
    backend = compiled(tmp_path, spec, 3, uint8)
    assert sorted(p.name for p in (tmp_path / "art").iterdir()) == ["model.onnx"]  # the batch-fixed copy is gone
    graph = onnx.load(str(tmp_path / "art" / "model.onnx")).graph
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [3, *spec.input_size]
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_value == 3
    c, h, w = spec.input_size
    assert backend.input_spec() == ((3, c, h, w), np.dtype(np.uint8 if uint8 else np.float32))
    pixels = pixels_for(spec, 3)
    x = backend.feed(pixels)
    assert x.dtype == backend.input_spec()[1]
    if uint8:
        np.testing.assert_array_equal(x, pixels)  # a uint8 graph normalises itself
    else:
        np.testing.assert_array_equal(x, normalize(pixels, spec.recipe))
    logits = backend.run(x)
    assert logits.shape == (3, spec.num_classes) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference(pixels, spec), rtol=1e-5, atol=1e-5)


def test_compile_needs_an_onnx_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compiles from an ONNX file"):
        OrtBackend().compile(CompileSource(spec=zoo.get("ran92_cifar10")), 1, tmp_path)


def test_load_names_the_file_and_what_is_wrong(tmp_path: Path) -> None:
    spec = zoo.get("ran92_cifar10")
    backend = OrtBackend({"threads": 1})
    with pytest.raises(ValueError, match="missing.onnx: no such ONNX file"):
        backend.load(tmp_path / "missing.onnx", 1, spec)
    os.mkfifo(tmp_path / "fifo.onnx")
    with pytest.raises(ValueError, match="fifo.onnx: is a FIFO"):  # named, never opened for reading (no hang)
        backend.load(tmp_path / "fifo.onnx", 1, spec)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match=r"junk\.onnx: ONNX Runtime cannot load it as a model \(INVALID_PROTOBUF"):
        backend.load(junk, 1, spec)
    cifar = pool_head(tmp_path / "cifar.onnx", spec)
    with pytest.raises(ValueError, match=r"cifar\.onnx: not a graph of scnet50_v1d, which takes one input input "
                                         r"\[N, 3, 224, 224\]"):
        backend.load(cifar, 1, zoo.get("scnet50_v1d"))
    fixed = pool_head(tmp_path / "fixed.onnx", spec, batch=4)
    with pytest.raises(ValueError, match="its batch size is fixed at 4, not 2"):
        backend.load(fixed, 2, spec)
    backend.load(fixed, 4, spec)
    assert backend.input_spec() == ((4, 3, 32, 32), np.dtype(np.float32))


def test_a_batch_of_the_wrong_shape_names_the_file_and_the_input(tmp_path: Path) -> None:
    spec = zoo.get("ran92_cifar10")
    backend = compiled(tmp_path, spec, 2)
    with pytest.raises(ValueError, match=r"model\.onnx: ONNX Runtime failed on a float32 batch of shape \[1, 3, 32, "
                                         r"32\], the model takes image \[2, 3, 32, 32\] float32"):
        backend.run(backend.feed(pixels_for(spec, 1)))


def test_ort_reason_is_one_line() -> None:
    assert _ort_reason(RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model\n failed")) == \
        "INVALID_PROTOBUF: Load model failed"
    assert _ort_reason(KeyError("x")) == "KeyError: 'x'"


# --------------------------------------------------------------------------- options


def test_threads_option_reaches_the_session(tmp_path: Path) -> None:
    spec = zoo.get("ran92_cifar10")
    backend = compiled(tmp_path, spec, 1, threads=2)
    options = backend.session.get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert backend.describe()["threads"] == "intra_op=2 inter_op=1"
    assert OrtBackend().threads() == os.cpu_count()  # 0 or unset: one per core


@pytest.mark.parametrize(("level", "expected"), [("disable", "ORT_DISABLE_ALL"), ("basic", "ORT_ENABLE_BASIC"),
                                                 ("all", "ORT_ENABLE_ALL")])
def test_level_option_reaches_the_session(tmp_path: Path, level: str, expected: str) -> None:
    backend = compiled(tmp_path, zoo.get("ran92_cifar10"), 1, level=level)
    assert backend.session.get_session_options().graph_optimization_level == getattr(ort.GraphOptimizationLevel,
                                                                                      expected)
    assert backend.describe()["extra"]["graph_optimization"] == level


def test_compile_level_decides_the_saved_graph(tmp_path: Path) -> None:
    """"disable" saves the graph as built; the default ("extended") folds MatMul + Add into one Gemm."""
    spec = zoo.get("ran92_cifar10")
    ops = {}
    for level in ("disable", "extended"):
        art = OrtBackend({"threads": 1, "compile_level": level}).compile(
            CompileSource(spec=spec, onnx=pool_head(tmp_path / "m.onnx", spec)), 2, tmp_path / level)
        ops[level] = [n.op_type for n in onnx.load(str(art)).graph.node]
    assert ops["disable"] == ["ReduceMean", "Flatten", "MatMul", "Add"]
    assert "Gemm" in ops["extended"] and "MatMul" not in ops["extended"]


def test_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OrtBackend().providers()[-1] == "CPUExecutionProvider"
    assert OrtBackend({"providers": ["CPUExecutionProvider"]}).providers() == ["CPUExecutionProvider"]
    with pytest.raises(BackendUnavailable, match=r"lacks \['NoSuchExecutionProvider'\]"):
        OrtBackend({"providers": ["NoSuchExecutionProvider", "CPUExecutionProvider"]}).providers()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime"):
        OrtBackend().providers()


# --------------------------------------------------------------------------- provenance and the host


def test_describe_on_the_cpu(tmp_path: Path) -> None:
    backend = compiled(tmp_path, zoo.get("ran92_cifar10"), 2, providers=["CPUExecutionProvider"])
    info = backend.describe()
    assert tuple(info) == DESCRIBE_KEYS and info["backend"] == "onnxruntime" == backend.name
    assert info["runtime"] == "onnxruntime" and info["runtime_version"] == ort.__version__ == backend.toolkit_version()
    assert info["device"] == cpu_model() and info["precision"] == "fp32"
    assert info["extra"]["providers"] == "CPUExecutionProvider"
    assert info["extra"]["graph_optimization"] == "all" and "session.run" in info["extra"]["compute_interval"]
    assert isinstance(get_backend("onnxruntime"), OrtBackend)


def test_host_checks_on_this_host() -> None:
    checks = OrtBackend({"threads": 1}).host_checks(HostPlan())
    assert [c.name for c in checks] == ["toolkit.version", "providers", "device", "threads"]
    assert all(c.status == "ok" for c in checks), [c.line() for c in checks]
    assert f"installed {ort.__version__}" in checks[0].detail and "CPUExecutionProvider" in checks[1].detail
    if not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers()):
        assert checks[2].detail == f"{cpu_model()} (onnxruntime {ort.__version__} has no CUDA or TensorRT provider: " \
                                   "CPU only)"


def test_host_checks_say_what_to_fix() -> None:
    pinned = OrtBackend({"threads": 1}).host_checks(HostPlan(toolkit_version="0.0"))[0]
    assert pinned.status == "FAIL" and pinned.fix == f"pip install onnxruntime==0.0.* or check out the branch for " \
                                                     f"{ort.__version__}"
    missing = OrtBackend({"providers": ["NoSuchExecutionProvider"]}).host_checks(HostPlan())
    assert [c.name for c in missing] == ["toolkit.version", "providers"] and missing[1].status == "FAIL"
    assert "onnxruntime-gpu" in missing[1].fix
    crowded = OrtBackend({"threads": usable_cores() + 1}).host_checks(HostPlan())[-1]
    assert crowded.status == "FAIL" and crowded.fix == f"set onnxruntime.threads to {usable_cores()} or less"
