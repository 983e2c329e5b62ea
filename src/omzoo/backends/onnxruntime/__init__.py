"""ONNX Runtime backend: CPU by default, CUDA / TensorRT providers when the installed build has them.

compile = fix the batch axis to the target batch size and save ORT's offline-optimised graph, so the
artefact that is benchmarked is exactly the one that was evaluated. int8 quantizes the fixed graph statically first
(calibrated on the calibration pixels, quantize.py), fp16 converts it (CUDA/TensorRT providers only).
On a CUDA provider the GPU's other processes and state come from nvidia-smi (backends/nvidia.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.base import CompileSource
from omzoo.backends.checks import DEVICE, Check, HostPlan, threads_check
from omzoo.backends.nvidia import GpuBackend
from omzoo.backends.onnxruntime.quantize import QDQ_GRAPH, convert_fp16, fp16_converter, quantize_int8
from omzoo.core.errors import BackendUnavailable
from omzoo.core.onnxgraph import as_input, load_onnx, onnx_bytes
from omzoo.core.params import OrtOptions
from omzoo.core.provenance import cpu_model
from omzoo.core.zoo import ModelSpec

_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
           "all": "ORT_ENABLE_ALL"}
_ACCELERATED = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def _ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendUnavailable("the onnxruntime backend needs `pip install onnxruntime` "
                                 "(or onnxruntime-gpu for the CUDA/TensorRT providers)") from e
    return onnxruntime


def _ort_reason(e: Exception) -> str:
    """ORT's message on one line, "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : ..." as "INVALID_PROTOBUF: ..."."""
    text = " ".join(str(e).split())
    m = re.fullmatch(r"\[ONNXRuntimeError\] : \d+ : (\w+) : (.*)", text)
    return f"{m.group(1)}: {m.group(2)}" if m else f"{type(e).__name__}: {text}"


def _checked_input(session: Any, artefact: Path, batch_size: int, spec: ModelSpec) -> tuple[tuple[int, ...], np.dtype]:
    """The input shape (batch filled in) and dtype of `spec`'s graph; ValueError naming the file when the session
    is another model's: another input name, channels or size, another number of classes, or a fixed batch size
    other than `batch_size`. Symbolic dimensions match anything."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    c, h, w = spec.input_size
    want = f"one input {spec.input_name} [N, {c}, {h}, {w}] uint8 or float32 and [N, {spec.num_classes}] logits"
    got = ", ".join(f"{v.name} {v.shape} {v.type}" for v in inputs)
    got_out = ", ".join(f"{v.name} {v.shape}" for v in outputs)
    inp = inputs[0] if len(inputs) == 1 else None
    out = outputs[0].shape if outputs else []
    fits = (inp is not None and inp.name == spec.input_name and len(inp.shape) == 4
            and inp.type in ("tensor(uint8)", "tensor(float)")
            and all(not isinstance(d, int) or d == e for d, e in zip(inp.shape[1:], spec.input_size, strict=True))
            and len(out) == 2 and (not isinstance(out[1], int) or out[1] == spec.num_classes))
    if not fits:
        raise ValueError(f"{artefact}: not a graph of {spec.id}, which takes {want}; this one takes {got} and "
                         f"gives {got_out}")
    assert inp is not None
    if isinstance(inp.shape[0], int) and inp.shape[0] != batch_size:
        raise ValueError(f"{artefact}: its batch size is fixed at {inp.shape[0]}, not {batch_size}; run it at batch "
                         f"size {inp.shape[0]} or export it with a dynamic batch")
    shape = tuple(d if isinstance(d, int) else batch_size for d in inp.shape)
    return shape, np.dtype(np.uint8) if inp.type == "tensor(uint8)" else np.dtype(np.float32)


def _device(ort: Any, providers: list[str]) -> str:
    """Where the first provider runs: the GPU ORT reports for CUDA/TensorRT, else the CPU's name."""
    return f"{ort.get_device()} ({providers[0]})" if providers[0] in _ACCELERATED else cpu_model()


class OrtBackend(GpuBackend):
    name = "onnxruntime"
    Options = OrtOptions
    FINGERPRINT_EXTRA = ("providers",)
    PRECISIONS = ("fp32", "fp16", "int8")

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.session = None
        self._artefact = Path()
        self._input_name = ""
        self._shape: tuple[int, ...] = ()
        self._dtype = np.dtype(np.float32)
        self._record: dict[str, Any] = {}  # how compile() made this precision (quantization settings), if it did

    def providers(self) -> list[str]:
        """`providers: auto` takes TensorRT/CUDA when this onnxruntime build has them, CPU always last."""
        wanted = self.options["providers"]
        available = _ort().get_available_providers()
        if wanted == "auto":
            return [p for p in _ACCELERATED if p in available] + ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise BackendUnavailable(f"onnxruntime {_ort().__version__} lacks {missing}; it has {available}")
        return list(wanted)

    def threads(self) -> int:
        return int(self.options["threads"] or os.cpu_count() or 1)

    def _session_options(self, level: str):
        ort = _ort()
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads()
        so.inter_op_num_threads = 1
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[level])
        return so

    def check_precision(self, precision: str) -> None:
        """fp32 and int8 everywhere (int8 runs on the CPU provider); fp16 only where the providers resolve to CUDA or
        TensorRT first, and this onnxruntime has the float16 converter."""
        super().check_precision(precision)
        if precision != "fp16":
            return
        providers = self.providers()
        if providers[0] not in _ACCELERATED:
            available = _ort().get_available_providers()
            has = (f"onnxruntime.providers puts {providers[0]} first" if set(_ACCELERATED) & set(available) else
                   f"this onnxruntime has {', '.join(p for p in available if p != 'AzureExecutionProvider')} only")
            raise ValueError(f"backend onnxruntime runs fp16 only on a CUDA or TensorRT provider; {has} (remove fp16 "
                             "from `precisions:`)")
        if fp16_converter() is None:
            raise ValueError(f"backend onnxruntime makes fp16 with onnxruntime.transformers.float16, which onnxruntime "
                             f"{_ort().__version__} lacks (install onnxruntime-gpu with its transformers tools, or "
                             "remove fp16 from `precisions:`)")

    def precision_record(self) -> dict[str, Any]:
        """int8: the quantization as it was done (format, types, per channel, reduce_range and why, calibration method
        and images used, opset); fp16: the converter; else {"precision": ...}."""
        if self._record.get("precision") == self.precision:
            return dict(self._record)
        return {"precision": self.precision}

    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        import onnx

        onnx_path = src.onnx
        if onnx_path is None:
            raise ValueError("the onnxruntime backend compiles from an ONNX file; none was given")
        self.check_precision(src.precision)
        self.precision, self._record = src.precision, {}
        model = load_onnx(onnx_path)
        for value in (*model.graph.input, *model.graph.output):
            dim = value.type.tensor_type.shape.dim[0]
            dim.ClearField("dim_param")
            dim.dim_value = batch_size
        out_dir.mkdir(parents=True, exist_ok=True)
        fixed = out_dir / "fixed.onnx"
        onnx.save(model, str(fixed))
        graph = fixed
        if self.precision == "int8":
            # The QDQ graph is kept (QDQ_GRAPH): ORT's offline optimisation below fuses its QuantizeLinear/
            # DequantizeLinear pairs into QLinearConv and friends (checked on RAN-92: it loads, same logits), so the
            # artefact loses the fp32 tensor names that `omzoo diagnose` compares by.
            graph = out_dir / QDQ_GRAPH
            self._record = quantize_int8(fixed, graph, src.spec, src.calibration, src.quantization, batch_size)
        elif self.precision == "fp16":
            graph = out_dir / "fp16.onnx"
            self._record = convert_fp16(fixed, graph)
        artefact = out_dir / "model.onnx"
        # "extended" fusions are portable across machines with this provider; layout-specific "all"
        # optimisations are applied again at load time.
        so = self._session_options(self.options["compile_level"])
        so.optimized_model_filepath = str(artefact)
        _ort().InferenceSession(onnx_bytes(graph), so, providers=self.providers())
        fixed.unlink()
        if graph != fixed and self._record.get("quant_format") != "QDQ":  # only QDQ keeps the fp32 tensor names
            graph.unlink()
        return artefact

    def load(self, artefact: Path, batch_size: int, spec: ModelSpec) -> None:
        """Open `artefact` and check that it is `spec`'s graph (inputs, classes, batch) before anything runs.

        ONNX Runtime's own errors (InvalidProtobuf, InvalidArgument) name no file and no expectation; a file that
        is not an ONNX model, or the graph of another model, fails here with both.
        """
        self.spec = spec
        model = onnx_bytes(artefact)  # a FIFO or a device is named as such, never read
        so = self._session_options(self.options["level"])
        providers = self.providers()  # outside the try: a missing provider is BackendUnavailable, not a bad file
        try:
            self.session = _ort().InferenceSession(model, so, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own classes, all derived from Exception only
            raise ValueError(f"{artefact}: ONNX Runtime cannot load it as a model ({_ort_reason(e)})") from None
        self._artefact = Path(artefact)
        self._shape, self._dtype = _checked_input(self.session, artefact, batch_size, spec)
        self._input_name = self.session.get_inputs()[0].name

    def input_spec(self) -> tuple[tuple[int, ...], np.dtype]:
        return self._shape, self._dtype

    def feed(self, pixels: np.ndarray) -> np.ndarray:
        return as_input(pixels, self.recipe, self._dtype)

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self.session.run(None, {self._input_name: batch})[0]
        except Exception as e:  # noqa: BLE001 - ORT's InvalidArgument, Fail, ...: name the file and the input
            raise ValueError(f"{self._artefact}: ONNX Runtime failed on a {batch.dtype} batch of shape "
                             f"{list(batch.shape)}, the model takes {self._input_name} {list(self._shape)} "
                             f"{self._dtype} ({_ort_reason(e)})") from None

    def toolkit_version(self) -> str:
        return _ort().__version__

    def accelerator(self) -> str | None:
        providers = self.session.get_providers() if self.session else self.providers()
        return "gpu" if providers[0] in _ACCELERATED else None

    def host_checks(self, plan: HostPlan) -> list[Check]:
        """The version against the pin, the providers the options resolve to, the device they run on, threads."""
        ort = _ort()
        checks = super().host_checks(plan)
        try:
            providers = self.providers()
        except BackendUnavailable as exc:
            return [*checks, Check.failed("providers", str(exc),
                                          "install onnxruntime-gpu, or set onnxruntime.providers: auto")]
        device = _device(ort, providers)
        if not set(_ACCELERATED) & set(ort.get_available_providers()):
            device += f" (onnxruntime {ort.__version__} has no CUDA or TensorRT provider: CPU only)"
        return [*checks, Check.passed("providers", ", ".join(providers)), Check.passed(DEVICE, device),
                threads_check(self.threads(), "onnxruntime.threads")]

    def pin_fix(self, expected: str) -> str:
        return f"pip install onnxruntime=={expected}.* or check out the branch for {self.toolkit_version()}"

    def describe(self) -> dict[str, Any]:
        ort = _ort()
        providers = self.session.get_providers() if self.session else self.providers()
        return self.described(
            runtime="onnxruntime", runtime_version=ort.__version__, device=_device(ort, providers),
            precision=self.precision, threads=f"intra_op={self.threads()} inter_op=1",
            providers=",".join(providers), graph_optimization=self.options["level"],
            compute_interval="session.run wall time (host arrays in and out)")
