"""SCNet-50 v1d: checkpoint layout, size, ONNX parity and the spec's quirks (docs/models.md §1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from archtools import (
    assert_matches_keys,
    assert_onnx_batch_parity,
    assert_rejects_unknown_option,
    bn_ref,
    onnx_export,
    ort_run,
    param_count,
    randomise_norms,
    tol_at_logit_std4,
)
from torch import nn

from omzoo.arch.scnet import SCConv, scnet50_v1d

MODEL_ID = "scnet50_v1d"


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return randomise_norms(scnet50_v1d())


def test_state_dict_matches_key_list(model: nn.Module) -> None:
    assert_matches_keys(model, MODEL_ID)


def test_parameter_count(model: nn.Module) -> None:
    assert param_count(model) == 25_583_816


def test_factory_rejects_unknown_options() -> None:
    assert_rejects_unknown_option(scnet50_v1d)


def test_onnx_dynamic_batch_parity(model: nn.Module) -> None:
    """ONNX names as in the Ascend port; random-init logits are smaller than std 4, so the tolerance shrinks."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    assert_onnx_batch_parity(model, x, "input", "output", 1000,
                             tol=lambda ref: tol_at_logit_std4(ref, cap=1e-3))


# --------------------------------------------------------------------------- independent references


def _conv_bn(x: torch.Tensor, seq: nn.Module, conv_i: int = 0, bn_i: int = 1) -> torch.Tensor:
    conv = seq[conv_i]
    return bn_ref(F.conv2d(x, conv.weight, None, conv.stride, conv.padding, 1, conv.groups), seq[bn_i])


def _floor_pool4(x: torch.Tensor) -> torch.Tensor:
    """4x4/stride-4 mean that drops trailing rows/cols (floor), written as a reshape."""
    n, c, h, w = x.shape
    h4, w4 = h // 4, w // 4
    return x[:, :, : 4 * h4, : 4 * w4].reshape(n, c, h4, 4, w4, 4).mean(dim=(3, 5))


def _legacy_nearest_index(n_in: int, n_out: int) -> list[int]:
    return [(d * n_in) // n_out for d in range(n_out)]


def _scconv_ref(x: torch.Tensor, sc: SCConv) -> torch.Tensor:
    p = _floor_pool4(x)
    p = bn_ref(F.conv2d(p, sc.k2[1].weight, padding=1), sc.k2[2])
    rows = torch.tensor(_legacy_nearest_index(p.shape[2], x.shape[2]))
    cols = torch.tensor(_legacy_nearest_index(p.shape[3], x.shape[3]))
    up = p[:, :, rows][:, :, :, cols]
    gate = torch.sigmoid(x + up)
    return _conv_bn(_conv_bn(x, sc.k3) * gate, sc.k4)


def test_legacy_nearest_mapping_3_to_14() -> None:
    assert _legacy_nearest_index(3, 14) == [0] * 5 + [1] * 5 + [2] * 4
    assert _legacy_nearest_index(7, 28) == [i // 4 for i in range(28)]
    assert _legacy_nearest_index(1, 7) == [0] * 7


@pytest.mark.parametrize("size", [14, 7, 28])
def test_scconv_floor_pool_and_legacy_nearest(size: int) -> None:
    """14 -> 3 ignores rows 12-13 and maps back 0-4/5-9/10-13; 7 -> 1 uses only the top-left 4x4.

    ``nearest-exact``, bilinear, a ceil-mode pool or an adaptive pool would all fail this.
    """
    torch.manual_seed(2)
    sc = randomise_norms(SCConv(8), seed=3)
    x = torch.randn(2, 8, size, size)
    with torch.no_grad():
        got = sc(x)
        ref = _scconv_ref(x, sc)
    assert got.shape == x.shape
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_scconv_onnx_resize_non_integer_scale() -> None:
    """The 3 -> 14 Resize in ONNX Runtime follows the same legacy mapping, at a batch other than export's."""
    torch.manual_seed(4)
    sc = randomise_norms(SCConv(8), seed=5)
    onnx_bytes = onnx_export(sc, torch.randn(1, 8, 14, 14), "x", "y")
    x = torch.randn(3, 8, 14, 14)
    with torch.no_grad():
        ref = _scconv_ref(x, sc).numpy()
    np.testing.assert_allclose(ort_run(onnx_bytes, x, "x"), ref, rtol=1e-4, atol=1e-4)


def _avd_ref(x: torch.Tensor) -> torch.Tensor:
    """AvgPool(3, s2, p1) with zero padding counted: sum of the 3x3 zero-padded window / 9."""
    xp = F.pad(x, (1, 1, 1, 1))
    h_out, w_out = (x.shape[2] - 1) // 2 + 1, (x.shape[3] - 1) // 2 + 1
    acc = torch.zeros(x.shape[0], x.shape[1], h_out, w_out)
    for dy in range(3):
        for dx in range(3):
            acc += xp[:, :, dy : dy + 2 * h_out : 2, dx : dx + 2 * w_out : 2]
    return acc / 9


def _block_ref(x: torch.Tensor, blk: nn.Module, stride: int) -> torch.Tensor:
    a = F.relu(bn_ref(F.conv2d(x, blk.conv1_a.weight), blk.bn1_a))
    b = F.relu(bn_ref(F.conv2d(x, blk.conv1_b.weight), blk.bn1_b))
    a = F.relu(bn_ref(F.conv2d(a, blk.k1[0].weight, padding=1), blk.k1[1]))  # stride 1, full resolution
    b = F.relu(_scconv_ref(b, blk.scconv))
    if stride == 2:  # avd after the ReLU, on both branches
        a, b = _avd_ref(a), _avd_ref(b)
    out = bn_ref(F.conv2d(torch.cat([a, b], 1), blk.conv3.weight), blk.bn3)
    r = x
    if stride == 2:  # avg-down: 2x2 mean (56, 28, 14 are even, so ceil_mode changes nothing here)
        n, c, h, w = x.shape
        r = x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))
    r = bn_ref(F.conv2d(r, blk.downsample[1].weight), blk.downsample[2])
    return F.relu(out + r)


@pytest.mark.parametrize(("layer", "size", "stride"), [("layer1", 56, 1), ("layer2", 56, 2)])
def test_first_block_matches_reference(model: nn.Module, layer: str, size: int, stride: int) -> None:
    """Block 0: 3x3 convs at input resolution, shared avd pool after ReLU, concat a-then-b, avg-down."""
    blk = getattr(model, layer)[0]
    x = torch.randn(1, blk.conv1_a.in_channels, size, size, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        got = blk(x)
        ref = _block_ref(x, blk, stride)
    assert got.shape[-1] == size // stride
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_stem_bn_outside_conv1(model: nn.Module) -> None:
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        s = F.relu(bn_ref(F.conv2d(x, model.conv1[0].weight, stride=2, padding=1), model.conv1[1]))
        s = F.relu(bn_ref(F.conv2d(s, model.conv1[3].weight, padding=1), model.conv1[4]))
        s = F.relu(bn_ref(F.conv2d(s, model.conv1[6].weight, padding=1), model.bn1))
        ref = F.max_pool2d(s, 3, 2, 1)
        got = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
