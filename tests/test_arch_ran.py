"""RAN-92 (CIFAR-10): keys, size, unused conv4, ONNX parity, the Ascend nearest-resize rewrite."""

from __future__ import annotations

import math

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
)
from torch import nn

from omzoo.arch.ran import Upsample, ran92_cifar10, rewrite_resize_nearest

MODEL_ID = "ran92_cifar10"
# residual blocks whose conv4 runs (shape change); the other 41 conv4 must stay idle
USED_CONV4 = {f"residual_block{i}.conv4" for i in (1, 2, 3, 4)}


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights with O(1) activations, perturbed BN stats, logit std ≈ 4.

    Mask-head convs get 3x gain so the soft mask (and hence the resize mode) matters visibly.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / math.sqrt(fan_in))
        for name, mod in model.named_modules():
            if ".conv1_1_blocks." in name and isinstance(mod, nn.Conv2d):
                mod.weight.mul_(3.0)
        randomise_norms(model, g)  # same generator: BN draws follow the conv draws; puts the model in eval
        x = torch.rand(2, 3, 32, 32, generator=g)
        model.fc.bias.zero_()
        model.fc.weight.mul_(4.0 / model(x).std())
    return model


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return _randomise(ran92_cifar10())


@pytest.fixture(scope="module")
def onnx_bytes(model: nn.Module) -> bytes:
    return onnx_export(model.eval(), torch.randn(1, 3, 32, 32), "image", "class")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def y_bilinear(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).numpy()


def test_keys_shapes_dtypes(model: nn.Module) -> None:
    assert_matches_keys(model, MODEL_ID)


def test_param_count_and_unused_conv4(model: nn.Module, x: torch.Tensor) -> None:
    assert param_count(model) == 19_920_362
    conv4 = {n: m for n, m in model.named_modules() if n.endswith(".conv4")}
    assert len(conv4) == 45
    ran: set[str] = set()
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: ran.add(n)) for n, m in conv4.items()]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    assert ran == USED_CONV4
    unused = set(conv4) - ran
    assert len(unused) == 41
    assert sum(conv4[n].weight.numel() for n in unused) == 7_749_632


def test_onnx_parity_dynamic_batch(model: nn.Module, onnx_bytes: bytes, x: torch.Tensor) -> None:
    import onnx

    assert_onnx_batch_parity(model, x, "image", "class", 10, tol=1e-3, onnx_bytes=onnx_bytes)
    proto = onnx.load_from_string(onnx_bytes)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 152  # 45*3 block convs + 4 used conv4 + stem + 12 mask-head convs
    assert ops.count("BatchNormalization") == 52
    resizes = [n for n in proto.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 4
    for n in resizes:
        attrs = {a.name: a.s.decode() for a in n.attribute if a.type == onnx.AttributeProto.STRING}
        assert attrs["mode"] == "linear" and attrs["coordinate_transformation_mode"] == "align_corners"


def test_nearest_rewrite_matches_torch_nearest(
    model: nn.Module, onnx_bytes: bytes, x: torch.Tensor, y_bilinear: np.ndarray
) -> None:
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    assert rewrite_resize_nearest(proto) == 4
    for n in proto.graph.node:
        if n.op_type == "Resize":
            attrs = {a.name: a.s.decode() for a in n.attribute if a.type == onnx.AttributeProto.STRING}
            assert attrs["mode"] == "nearest"
            assert attrs["coordinate_transformation_mode"] == "asymmetric"
            assert attrs["nearest_mode"] == "floor"
    nearest = ran92_cifar10(nearest_resize=True)
    nearest.load_state_dict(model.state_dict(), strict=True)
    nearest.eval()
    with torch.no_grad():
        y_near = nearest(x).numpy()
    out = ort_run(proto.SerializeToString(), x, "image")
    assert np.abs(out - y_near).max() <= 1e-3
    # the rewrite changes the maths on purpose: far outside the parity tolerance
    assert np.abs(y_near - y_bilinear).max() > 5e-2


def _np_bilinear_align_corners(a: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Independent reference: src = dst * (in - 1) / (out - 1), separable linear interpolation."""

    def axis_weights(n_in: int, n_out: int) -> np.ndarray:
        w = np.zeros((n_out, n_in), dtype=np.float64)
        for d in range(n_out):
            s = d * (n_in - 1) / (n_out - 1)
            i0 = int(np.floor(s))
            i1 = min(i0 + 1, n_in - 1)
            f = s - i0
            w[d, i0] += 1 - f
            w[d, i1] += f
        return w

    wh = axis_weights(a.shape[-2], out_h)
    ww = axis_weights(a.shape[-1], out_w)
    return np.einsum("oh,nchw,pw->ncop", wh, a.astype(np.float64), ww)


@pytest.mark.parametrize("n_in,n_out", [(8, 16), (16, 32)])
def test_upsample_bilinear_align_corners_and_nearest(n_in: int, n_out: int) -> None:
    a = torch.randn(2, 3, n_in, n_in, generator=torch.Generator().manual_seed(n_in))
    with torch.no_grad():
        got = Upsample((n_out, n_out))(a).numpy()
        got_near = Upsample((n_out, n_out), nearest=True)(a).numpy()
    ref = _np_bilinear_align_corners(a.numpy(), n_out, n_out)
    assert np.abs(got - ref).max() < 1e-5
    # the Ascend variant: src = floor(dst / 2), i.e. plain 2x pixel replication
    idx = np.arange(n_out) // 2
    assert np.array_equal(got_near, a.numpy()[:, :, idx][:, :, :, idx])
    # corners are copied exactly under align_corners=True
    assert np.array_equal(got[..., 0, 0], a.numpy()[..., 0, 0])
    assert np.array_equal(got[..., -1, -1], a.numpy()[..., -1, -1])


def _ru_ref(ru: nn.Module, x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pre-activation RU with projection on the pre-activated input, identity on the raw input."""
    a = F.relu(bn_ref(x, ru.bn1))
    y = F.conv2d(a, ru.conv1.weight)
    y = F.conv2d(F.relu(bn_ref(y, ru.bn2)), ru.conv2.weight, stride=stride, padding=1)
    y = F.conv2d(F.relu(bn_ref(y, ru.bn3)), ru.conv3.weight)
    proj = x.shape[1] != y.shape[1] or stride != 1
    return y + (F.conv2d(a, ru.conv4.weight, stride=stride) if proj else x)


def test_residual_unit_and_stage2_against_functional_reference(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        # projection RU (stride 2): conv4 takes relu(bn1(x)), not x
        x = torch.randn(1, 128, 16, 16, generator=g)
        assert torch.allclose(model.residual_block2(x), _ru_ref(model.residual_block2, x, 2), atol=1e-5)
        # AM2: trunk is added into the mask branch, then (1 + mask) * trunk
        am = model.attention_module2
        x = torch.randn(1, 256, 16, 16, generator=g)
        h = _ru_ref(am.first_residual_blocks, x, 1)
        t = _ru_ref(am.trunk_branches[1], _ru_ref(am.trunk_branches[0], h, 1), 1)
        m = F.max_pool2d(h, 3, 2, 1)
        m = _ru_ref(am.middle_2r_blocks[1], _ru_ref(am.middle_2r_blocks[0], m, 1), 1)
        up = torch.from_numpy(_np_bilinear_align_corners(m.numpy(), 16, 16)).float()
        hd = am.conv1_1_blocks
        s = F.conv2d(F.relu(bn_ref(up + t, hd[0])), hd[2].weight)
        s = torch.sigmoid(F.conv2d(F.relu(bn_ref(s, hd[3])), hd[5].weight))
        ref = _ru_ref(am.last_blocks, (1 + s) * t, 1)
        assert torch.allclose(am(x), ref, atol=1e-4, rtol=1e-4)


def test_factory_rejects_unknown_options() -> None:
    assert_rejects_unknown_option(ran92_cifar10, "pretrained")
    m = ran92_cifar10(nearest_resize=True)
    assert all(u.nearest for u in m.modules() if isinstance(u, Upsample))
