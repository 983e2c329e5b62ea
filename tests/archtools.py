"""Helpers shared by the architecture tests (tests/test_arch_*.py): the checks every architecture gets (key
list, parameter count, unknown factory options, ONNX dynamic-batch parity), random norms, a reference BN.

torch, onnx and onnxruntime are imported inside the helpers, so collecting the other test files stays cheap.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch
    from torch import nn

KEYS_DIR = Path(__file__).parent / "keys"


# ------------------------------------------------------------------------------------------ state-dict layout


def expected_keys(model_id: str) -> dict[str, tuple[str, str]]:
    """``tests/keys/<model_id>.txt`` (tab-separated key, shape, dtype) as {key: (shape, dtype)}, in file order."""
    out = {}
    for line in (KEYS_DIR / f"{model_id}.txt").read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split("\t")
            out[key] = (shape, dtype)
    return out


def state_dict_layout(model: nn.Module) -> dict[str, tuple[str, str]]:
    """{key: (shape, dtype)} in the key files' notation: ``(64, 3, 7, 7)`` and ``float32``."""
    return {k: (str(tuple(v.shape)), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}


def assert_matches_keys(model: nn.Module, model_id: str) -> dict[str, tuple[str, str]]:
    """The model's state_dict has exactly the listed keys, shapes and dtypes; returns the layout."""
    got, expected = state_dict_layout(model), expected_keys(model_id)
    unexpected, missing = sorted(set(got) - set(expected)), sorted(set(expected) - set(got))
    assert not unexpected and not missing, f"unexpected keys {unexpected[:10]}, missing keys {missing[:10]}"
    assert got == expected
    return got


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_rejects_unknown_option(factory: Callable[..., nn.Module], name: str = "no_such_option") -> None:
    """A misspelt option fails by name instead of silently building the default model, and options are
    keyword-only, so a positional value cannot land on the wrong one."""
    with pytest.raises(TypeError, match=name):
        factory(**{name: True})
    with pytest.raises(TypeError):
        factory(True)


# ------------------------------------------------------------------------------------------ random norms


def randomise_norm(mod: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial stats/affine for one BatchNorm2d or LayerNorm (no-op for anything else).

    BN: running_mean ~ 0.1 N(0,1), running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5), bias ~ 0.1 N(0,1), drawn
    in that order; LN: weight and bias only.
    """
    import torch
    from torch import nn

    if not isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
        return
    with torch.no_grad():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
        n = mod.weight.numel()
        mod.weight.copy_(torch.rand(n, generator=gen).view_as(mod.weight) + 0.5)
        mod.bias.copy_(torch.randn(n, generator=gen).view_as(mod.bias) * 0.1)


def randomise_norms(model: nn.Module, seed: int | torch.Generator = 0) -> nn.Module:
    """``randomise_norm`` on every module, so a wrong BN/LN mapping or placement cannot hide; returns it in eval.

    ``seed`` may be a generator already in use, to continue its stream (e.g. after randomising conv weights).
    """
    import torch

    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    for mod in model.modules():
        randomise_norm(mod, gen)
    return model.eval()


def bn_ref(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm2d written out, (x - running_mean) / sqrt(running_var + 1e-5) * weight + bias: eps is
    the originals' 1e-5, not the module's own, so a port with another eps fails the reference."""
    import torch

    s = (1, -1, 1, 1)
    return (x - bn.running_mean.view(s)) / torch.sqrt(bn.running_var.view(s) + 1e-5) * bn.weight.view(
        s) + bn.bias.view(s)


# ------------------------------------------------------------------------------------------ ONNX / ORT


def onnx_export(model: nn.Module, example: torch.Tensor, input_name: str, output_name: str) -> bytes:
    """Legacy (TorchScript) exporter, opset 11, dim 0 of input and output dynamic (``batch``), as in the ports."""
    import torch

    buf = io.BytesIO()
    torch.onnx.export(
        model,
        example,
        buf,
        opset_version=11,
        dynamo=False,
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
    )
    return buf.getvalue()


def ort_session(model_bytes: bytes) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU provider (opening a large model takes seconds: open it once)."""
    import onnxruntime as ort

    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def ort_run(
    model: bytes | ort.InferenceSession, x: torch.Tensor | np.ndarray, input_name: str, output_name: str | None = None
) -> np.ndarray:
    """The model's output (the one named ``output_name`` if given, else the first) on ONNX Runtime's CPU provider;
    ``model`` is the ONNX bytes or an ``ort_session`` on them."""
    import torch

    sess = ort_session(model) if isinstance(model, bytes) else model
    feed = x.numpy() if isinstance(x, torch.Tensor) else x
    return sess.run(None if output_name is None else [output_name], {input_name: feed})[0]


def tol_at_logit_std4(ref: np.ndarray, cap: float = math.inf) -> float:
    """docs/models.md §0.4's fp32 tolerance, 1e-3, holds at logit std 4; an error scales with the logits, so
    for random weights it is scaled to the std of ``ref`` (and kept at or below ``cap``)."""
    return min(cap, 1e-3 * float(ref.std()) / 4)


def assert_onnx_batch_parity(
    model: nn.Module, x: torch.Tensor, input_name: str, output_name: str, classes: int,
    tol: float | Callable[[np.ndarray], float], onnx_bytes: bytes | None = None,
) -> bytes:
    """The ports' ONNX file must not bake N=1: exported at batch 1 (``onnx_export``, unless ``onnx_bytes`` is
    given), its batch dimension is the symbol ``batch``, and ONNX Runtime at ``len(x)`` and at 1 gives torch's
    ``[n, classes]`` outputs within ``tol``: a number, or a function of torch's output on ``x`` (for tolerances
    judged at a logit scale). Returns the ONNX bytes, for checks of the graph itself."""
    import onnx
    import torch

    if onnx_bytes is None:
        onnx_bytes = onnx_export(model, x[:1], input_name, output_name)
    graph = onnx.load_from_string(onnx_bytes).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    with torch.no_grad():
        ref = model(x).numpy()
    limit = tol(ref) if callable(tol) else tol
    sess = ort_session(onnx_bytes)
    for n in (len(x), 1):
        got = ort_run(sess, x[:n], input_name, output_name)
        assert got.shape == (n, classes)
        assert np.abs(got - ref[:n]).max() <= limit, f"batch {n}"
    return onnx_bytes
