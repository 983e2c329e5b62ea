"""Helpers shared by the architecture tests (tests/test_arch_*.py): key lists, random norms, ONNX parity.

torch, onnx and onnxruntime are imported inside the helpers, so collecting the other test files stays cheap.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
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


def ort_run(
    model_bytes: bytes, x: torch.Tensor | np.ndarray, input_name: str, output_name: str | None = None
) -> np.ndarray:
    """The model's output (the one named ``output_name`` if given, else the first) on ONNX Runtime's CPU provider."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feed = x.numpy() if isinstance(x, torch.Tensor) else x
    return sess.run(None if output_name is None else [output_name], {input_name: feed})[0]
