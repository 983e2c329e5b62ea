"""SE-ResNeXt-101 32x4d: checkpoint layout, size, ONNX parity and the SE placement (docs/models.md §2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from archtools import (
    assert_matches_keys,
    assert_onnx_batch_parity,
    assert_rejects_unknown_option,
    bn_ref,
    param_count,
    randomise_norms,
    tol_at_logit_std4,
)
from torch import nn

from omzoo.arch.seresnext import seresnext101_32x4d

MODEL_ID = "seresnext101_32x4d"


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return randomise_norms(seresnext101_32x4d())


def test_state_dict_matches_key_list(model: nn.Module) -> None:
    assert_matches_keys(model, MODEL_ID)


def test_parameter_count(model: nn.Module) -> None:
    assert param_count(model) == 48_955_416


def test_factory_rejects_unknown_options() -> None:
    assert_rejects_unknown_option(seresnext101_32x4d)


def test_onnx_dynamic_batch_parity(model: nn.Module) -> None:
    """ONNX names as in the Ascend port; random-init logits are smaller than std 4, so the tolerance shrinks."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    assert_onnx_batch_parity(model, x, "image", "class", 1000,
                             tol=lambda ref: tol_at_logit_std4(ref, cap=1e-3))


@pytest.mark.parametrize(("layer", "size"), [("layer1", 56), ("layer4", 14)])
def test_block_se_before_residual(model: nn.Module, layer: str, size: int) -> None:
    """SE (mean -> fc1 -> relu -> fc2 -> sigmoid) scales bn3's output before the shortcut is added."""
    blk = getattr(model, layer)[0]
    x = torch.randn(1, blk.conv1.in_channels, size, size, generator=torch.Generator().manual_seed(8))
    stride = blk.conv2.stride[0]
    with torch.no_grad():
        o = F.relu(bn_ref(F.conv2d(x, blk.conv1.weight), blk.bn1))
        o = F.relu(bn_ref(F.conv2d(o, blk.conv2.weight, stride=stride, padding=1, groups=32), blk.bn2))
        o = bn_ref(F.conv2d(o, blk.conv3.weight), blk.bn3)
        z = o.mean(dim=(2, 3))
        z = torch.sigmoid(F.relu(z @ blk.fc1.weight.T + blk.fc1.bias) @ blk.fc2.weight.T + blk.fc2.bias)
        r = bn_ref(F.conv2d(x, blk.downsample[0].weight, stride=stride), blk.downsample[1])
        ref = F.relu(o * z[:, :, None, None] + r)
        got = blk(x)
    assert blk.conv2.groups == 32 and blk.fc1.weight.shape == (blk.conv3.out_channels // 16, blk.conv3.out_channels)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
