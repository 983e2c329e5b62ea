"""TResNet-M (Ascend-patched timm v0.4.5): keys, size, ONNX parity and the patch's numerical quirks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from archtools import (
    assert_matches_keys,
    assert_onnx_batch_parity,
    assert_rejects_unknown_option,
    bn_ref,
    onnx_export,
    ort_session,
    param_count,
    randomise_norm,
    tol_at_logit_std4,
)
from onnx import TensorProto, helper
from torch import nn

from omzoo.arch.tresnet import AntiAliasDownsample, BasicBlock, Bottleneck, SpaceToDepth, tresnet_m

N_PARAMS = 31_389_032


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random conv/linear weights and BN stats/affine, so a wrong mapping or zero-init can't hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                randomise_norm(m, g)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return _randomise(tresnet_m())


def test_state_dict_matches_key_list(model: nn.Module) -> None:
    assert len(assert_matches_keys(model, "tresnet_m")) == 434


def test_parameter_count(model: nn.Module) -> None:
    assert param_count(model) == N_PARAMS


def test_factory_rejects_unknown_options() -> None:
    assert_rejects_unknown_option(tresnet_m, "pretrained")


def test_onnx_dynamic_batch_parity(model: nn.Module) -> None:
    """Random deep residual nets have huge logits: the error is judged as if head.fc were rescaled to logit
    std 4, which scales the error by the same factor."""
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    onnx_bytes = assert_onnx_batch_parity(model, x, "image", "class", 1000, tol=tol_at_logit_std4)
    ops = [n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node]
    assert "Pad" not in ops  # the patched blur zero-pads inside the Conv
    assert ops.count("LeakyRelu") == 36 and ops.count("Relu") == 39


# --------------------------------------------------------------------------- space-to-depth


def test_space_to_depth_matches_index_formula() -> None:
    """Output channel (bh*4 + bw)*C + c at (i, j) is input (c, 4i + bh, 4j + bw); not pixel_unshuffle."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 12)).astype(np.float32)
    n, c, h, w = x.shape
    ref = np.empty((n, 16 * c, h // 4, w // 4), np.float32)
    for bh in range(4):
        for bw in range(4):
            for ch in range(c):
                for i in range(h // 4):
                    for j in range(w // 4):
                        ref[:, (bh * 4 + bw) * c + ch, i, j] = x[:, ch, 4 * i + bh, 4 * j + bw]
    got = SpaceToDepth(4)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(F.pixel_unshuffle(torch.from_numpy(x), 4).numpy(), ref)


def test_space_to_depth_onnx_dynamic_batch_equals_onnx_op() -> None:
    """Our traced export keeps the batch dynamic and equals ONNX's own SpaceToDepth(blocksize=4)."""
    ours = ort_session(onnx_export(SpaceToDepth(4), torch.randn(1, 3, 16, 16), "x", "y"))
    node = helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=4)
    graph = helper.make_graph(
        [node],
        "s2d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 48, 4, 4])],
    )
    onnx_ref = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx_ref.ir_version = 7
    native = ort_session(onnx_ref.SerializeToString())
    for b in (1, 3):
        x = np.random.default_rng(b).standard_normal((b, 3, 16, 16)).astype(np.float32)
        got = ours.run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, native.run(None, {"x": x})[0])
        np.testing.assert_array_equal(got, SpaceToDepth(4)(torch.from_numpy(x)).numpy())


# --------------------------------------------------------------------------- anti-alias blur


def _blur_reference(x: np.ndarray) -> np.ndarray:
    """Hand-written depthwise [[1,2,1],[2,4,2],[1,2,1]]/16, stride 2, zero padding 1."""
    k = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float64) / 16.0
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2, w + 2), np.float64)
    xp[:, :, 1:-1, 1:-1] = x
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = np.zeros((n, c, ho, wo), np.float64)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = (xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] * k).sum(axis=(2, 3))
    return out


def test_blur_zero_padding_and_filter() -> None:
    aa = AntiAliasDownsample(5)
    # constant input: zero padding attenuates the border (reflect padding would give all ones)
    ones = aa(torch.ones(1, 5, 6, 6))[0, 0]
    assert ones.shape == (3, 3)
    assert ones[0, 0].item() == pytest.approx(9 / 16)
    assert ones[0, 1].item() == pytest.approx(12 / 16)
    assert ones[1, 0].item() == pytest.approx(12 / 16)
    assert ones[1, 1].item() == pytest.approx(1.0)
    x = np.random.default_rng(0).standard_normal((2, 5, 9, 8)).astype(np.float32)
    np.testing.assert_allclose(aa(torch.from_numpy(x)).numpy(), _blur_reference(x), atol=1e-6)


def test_blur_filter_is_non_persistent_buffer(model: nn.Module) -> None:
    aa = AntiAliasDownsample(7)
    assert "filt" in dict(aa.named_buffers()) and "filt" not in aa.state_dict()
    assert not any("filt" in k for k in model.state_dict())
    blurs = [m for m in model.modules() if isinstance(m, AntiAliasDownsample)]
    assert [b.filt.shape[0] for b in blurs] == [128, 256, 512]
    ptr = aa.filt.data_ptr()
    aa(torch.randn(1, 7, 4, 4))
    assert aa.filt.data_ptr() == ptr


# --------------------------------------------------------------------------- activations / blocks


def test_leaky_relu_slope_is_001_everywhere(model: nn.Module) -> None:
    leaky = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 36  # stem + 7 BasicBlock conv1 + 2 per Bottleneck (14 blocks)
    assert all(m.negative_slope == 0.01 for m in leaky)
    # functional check on the stem: delta conv, identity BN -> y = leaky(x / sqrt(1 + eps), 0.01)
    stem = model.body.conv1
    saved = {k: v.clone() for k, v in stem.state_dict().items()}
    try:
        with torch.no_grad():
            stem[0].weight.zero_()
            for o in range(64):
                stem[0].weight[o, o % 48, 1, 1] = 1.0
            stem[1].running_mean.zero_()
            stem[1].running_var.fill_(1.0)
            stem[1].weight.fill_(1.0)
            stem[1].bias.zero_()
            x = torch.randn(1, 48, 5, 5)
            y = stem(x)
        v = x[:, [o % 48 for o in range(64)]].numpy() / np.sqrt(1 + 1e-5)
        np.testing.assert_allclose(y.numpy(), np.where(v > 0, v, 0.01 * v), rtol=1e-5, atol=1e-7)
    finally:
        stem.load_state_dict(saved)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x, 0.01 * x)


def _avgpool_ceil_no_pad_count(x: torch.Tensor) -> torch.Tensor:
    """AvgPool(2, s2, ceil_mode, count_include_pad=False) by hand: pad to even, sum, divide by count."""
    h, w = x.shape[-2:]
    ph, pw = h % 2, w % 2
    xp = torch.zeros(*x.shape[:2], h + ph, w + pw, dtype=torch.float64)
    cnt = torch.zeros(1, 1, h + ph, w + pw, dtype=torch.float64)
    xp[..., :h, :w] = x
    cnt[..., :h, :w] = 1
    s = xp.unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    c = cnt.unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    return s / c


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    b = None if conv.bias is None else conv.bias.double()
    return F.conv2d(x, conv.weight.double(), b, padding=conv.weight.shape[-1] // 2)


def _se(x: torch.Tensor, se: nn.Module) -> torch.Tensor:
    z = x.mean((2, 3), keepdim=True)
    z = _conv(torch.relu(_conv(z, se.fc1)), se.fc2)
    return x * torch.sigmoid(z)


@torch.no_grad()
def test_strided_bottleneck_against_functional_reference() -> None:
    """SE on `planes` before conv3, blur after conv3x3+BN+leaky, avg-pool shortcut with ceil/no-pad-count."""
    torch.manual_seed(0)
    blk = _randomise(Bottleneck(24, 16, stride=2, use_se=True).double(), seed=3)
    assert blk.se.fc1.out_channels == 64  # max(64 // 8, 64)
    x = torch.randn(2, 24, 9, 9, dtype=torch.float64)
    o = _leaky(bn_ref(_conv(x, blk.conv1[0]), blk.conv1[1]))
    o = _leaky(bn_ref(_conv(o, blk.conv2[0][0]), blk.conv2[0][1]))
    o = torch.from_numpy(_blur_reference(o.numpy()))
    o = _se(o, blk.se)
    o = bn_ref(_conv(o, blk.conv3[0]), blk.conv3[1])
    r = bn_ref(_conv(_avgpool_ceil_no_pad_count(x), blk.downsample[1][0]), blk.downsample[1][1])
    ref = torch.relu(o + r)
    got = blk(x)
    assert got.shape == (2, 64, 5, 5)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-9, atol=1e-9)


@torch.no_grad()
def test_strided_basic_block_against_functional_reference() -> None:
    torch.manual_seed(0)
    blk = _randomise(BasicBlock(8, 16, stride=2, use_se=True).double(), seed=4)
    assert blk.se.fc1.out_channels == 64  # max(16 // 4, 64)
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64)
    o = _leaky(bn_ref(_conv(x, blk.conv1[0][0]), blk.conv1[0][1]))
    o = torch.from_numpy(_blur_reference(o.numpy()))
    o = _se(bn_ref(_conv(o, blk.conv2[0]), blk.conv2[1]), blk.se)
    r = bn_ref(_conv(_avgpool_ceil_no_pad_count(x), blk.downsample[1][0]), blk.downsample[1][1])
    np.testing.assert_allclose(blk(x).numpy(), torch.relu(o + r).numpy(), rtol=1e-9, atol=1e-9)
