"""Precisions other than fp32 for the onnxruntime backend: static int8 quantization and fp16 conversion.

int8 = onnxruntime.quantization.quantize_static on the fixed-batch fp32 graph, calibrated on the model's calibration
pixels fed exactly as at run time (the recipe's `as_input`), with the settings of params.yaml `precision:`. The
export is opset 11; per-channel DequantizeLinear (its `axis`) needs opset 13, so the graph is converted first. Every
choice that depends on the host (reduce_range: auto) is resolved here and recorded, so the artefact says how it was
made.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.base import pad_batch
from omzoo.core.onnxgraph import as_input, load_onnx
from omzoo.core.zoo import ModelSpec

#: the opset the quantized graph is converted to: per-channel QuantizeLinear/DequantizeLinear (`axis`) need 13
QUANT_OPSET = 13
#: the CPU flags of the int8 dot-product instructions (VNNI, AMX) that make 8-bit weights safe from u8s8 saturation
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
#: the settings of params.PrecisionConfig that quantize_int8 reads, with their defaults
DEFAULTS: dict[str, Any] = {"calibration_method": "MinMax", "quant_format": "QDQ", "activations": "int8",
                            "weights": "int8", "per_channel": True, "reduce_range": "auto"}
#: the quantized graph before ORT's offline optimisation, kept beside the artefact: it has the fp32 graph's tensor
#: names (what `omzoo diagnose` compares node by node); the artefact itself has them fused into QLinear operators
QDQ_GRAPH = "quantized.onnx"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo `flags`); empty where that file is absent or unreadable."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def resolve_reduce_range(setting: str | bool, flags: set[str] | None = None) -> tuple[bool, str]:
    """precision.reduce_range as quantize_static takes it, and why: `auto` is True where the CPU lacks VNNI (without
    it, u8s8 int8 products can saturate the 16-bit accumulation of the AVX2/AVX-512 kernels)."""
    if isinstance(setting, bool):
        return setting, "set in params.yaml precision.reduce_range"
    if setting != "auto":
        raise ValueError(f"precision.reduce_range must be auto, true or false, not {setting!r}")
    flags = cpu_flags() if flags is None else flags
    have = [f for f in VNNI_FLAGS if f in flags]
    if have:
        return False, f"auto: CPU has VNNI ({have[0]})"
    return True, "auto: CPU lacks VNNI (no " + ", ".join(VNNI_FLAGS) + " in /proc/cpuinfo)"


def _reader_class() -> type:
    from onnxruntime.quantization import CalibrationDataReader

    class PixelReader(CalibrationDataReader):
        """Batches of the graph's batch size from uint8 calibration pixels, through the recipe as at run time (the
        last short batch padded by repeating its last image, as run_shards does)."""

        def __init__(self, pixels: np.ndarray, spec: ModelSpec, input_name: str, dtype: np.dtype,
                     batch_size: int) -> None:
            self.pixels, self.spec, self.input_name = pixels, spec, input_name
            self.dtype, self.batch_size = dtype, batch_size
            self._it = self._batches()

        def _batches(self) -> Iterator[dict[str, np.ndarray]]:
            for start in range(0, len(self.pixels), self.batch_size):
                batch, _ = pad_batch(self.pixels[start:start + self.batch_size], self.batch_size)
                yield {self.input_name: as_input(batch, self.spec.recipe, self.dtype)}

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = self._batches()

    return PixelReader


def calibration_reader(pixels: np.ndarray, spec: ModelSpec, input_name: str, dtype: np.dtype, batch_size: int):
    """An onnxruntime.quantization CalibrationDataReader over `pixels` (uint8 NCHW) for `spec`'s graph."""
    return _reader_class()(pixels, spec, input_name, np.dtype(dtype), batch_size)


def checked_calibration(pixels: np.ndarray | None, spec: ModelSpec) -> np.ndarray:
    """The calibration pixels as uint8 NCHW of `spec`'s input size; ValueError, one line naming the model, when there
    are none or they are of another shape."""
    if pixels is None or len(pixels) == 0:
        raise ValueError(f"{spec.id}: int8 needs calibration images and none were given (the calibration set is "
                         "empty; run the calibrate stage, precision.calibration_images must be at least 1)")
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or tuple(pixels.shape[1:]) != tuple(spec.input_size):
        raise ValueError(f"{spec.id}: calibration pixels must be uint8 [N, {', '.join(map(str, spec.input_size))}], "
                         f"got {pixels.dtype} {list(pixels.shape)}")
    return pixels


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs a warning on the root logger per 1-D weight it cannot quantize per channel
    (BatchNormalization's scale), and its Entropy and Percentile calibrators print their progress on stdout: lines
    that say nothing about the result. Errors still show."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def quantize_int8(fixed: Path, out: Path, spec: ModelSpec, calibration: np.ndarray | None,
                  settings: Mapping[str, Any], batch_size: int) -> dict[str, Any]:
    """Quantize the fixed-batch fp32 graph `fixed` statically into `out`; return the precision record.

    `settings` are params.PrecisionConfig's fields (calibration_images is what was asked; the record says how many
    were used). The same inputs give the same bytes: calibration is deterministic and nothing random is drawn.
    Steps, each recorded: opset 11 → 13 (onnx.version_converter), onnxruntime's quantization pre-processing
    (quant_pre_process: ORT's basic optimisation and ONNX shape inference; the batch is fixed, so the symbolic shape
    inference is skipped), then quantize_static.
    """
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    s = {**DEFAULTS, **{k: v for k, v in settings.items() if k in DEFAULTS}}
    pixels = checked_calibration(calibration, spec)
    model = load_onnx(fixed)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), QUANT_OPSET)
    if opset < QUANT_OPSET:
        model = version_converter.convert_version(model, QUANT_OPSET)
    converted = out.with_name(f"{out.stem}.opset{QUANT_OPSET}.onnx")
    onnx.save(model, str(converted))
    prepared = out.with_name(f"{out.stem}.pre.onnx")
    try:
        quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
        preprocess = "quant_pre_process (ORT basic optimisation, ONNX shape inference)"
    except Exception as e:  # noqa: BLE001 - pre-processing is an aid: quantize the converted graph without it
        prepared = converted
        preprocess = f"none (quant_pre_process failed: {type(e).__name__}: {' '.join(str(e).split())[:200]})"
    reduce_range, reason = resolve_reduce_range(s["reduce_range"])
    graph_input = load_onnx(prepared).graph.input[0]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    try:
        with _quiet():
            quantize_static(
                str(prepared), str(out),
                calibration_reader(pixels, spec, graph_input.name, dtype, batch_size),
                quant_format=getattr(QuantFormat, s["quant_format"]),
                activation_type=types[s["activations"]], weight_type=types[s["weights"]],
                per_channel=bool(s["per_channel"]), reduce_range=reduce_range,
                calibrate_method=getattr(CalibrationMethod, s["calibration_method"]))
    finally:
        for tmp in {converted, prepared}:
            tmp.unlink(missing_ok=True)
    return {"precision": "int8", "quant_format": s["quant_format"], "activations": s["activations"],
            "weights": s["weights"], "per_channel": bool(s["per_channel"]), "reduce_range": reduce_range,
            "reduce_range_reason": reason, "calibration_method": s["calibration_method"],
            "calibration_images": len(pixels), "opset": max(opset, QUANT_OPSET), "opset_exported": opset,
            "preprocess": preprocess}


def fp16_converter():
    """onnxruntime.transformers.float16.convert_float_to_float16, or None where this onnxruntime lacks it."""
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError:
        return None
    return convert_float_to_float16


def convert_fp16(fixed: Path, out: Path) -> dict[str, Any]:
    """The fixed-batch fp32 graph in float16, its input and output types kept (uint8 pixels in, float32 logits out)."""
    import onnx

    convert = fp16_converter()
    if convert is None:
        raise ValueError("fp16 needs onnxruntime.transformers.float16, which this onnxruntime lacks")
    onnx.save(convert(load_onnx(fixed), keep_io_types=True), str(out))
    return {"precision": "fp16", "converter": "onnxruntime.transformers.float16.convert_float_to_float16",
            "keep_io_types": True}
