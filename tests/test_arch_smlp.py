"""sMLPNet-T architecture: checkpoint keys, size, token-mixing quirks, ONNX parity (docs/models.md §4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from archtools import (
    assert_matches_keys,
    assert_onnx_batch_parity,
    assert_rejects_unknown_option,
    param_count,
    randomise_norms,
)
from torch import nn

from omzoo.arch.smlp import SparseMLPBlock, smlpnet_tiny

MODEL_ID = "smlpnet_tiny"
PARAMS = 24_123_584


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return smlpnet_tiny().eval()


def test_state_dict_matches_key_list(model: nn.Module) -> None:
    assert len(assert_matches_keys(model, MODEL_ID)) == 583


def test_parameter_count(model: nn.Module) -> None:
    assert param_count(model) == PARAMS


def test_factory_rejects_unknown_options() -> None:
    assert_rejects_unknown_option(smlpnet_tiny, "drop_path_rate")


def test_exact_gelu_and_norm_eps(model: nn.Module) -> None:
    gelus = [m for m in model.modules() if isinstance(m, nn.GELU)]
    assert len(gelus) == 78 and all(m.approximate == "none" for m in gelus)
    lns = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(lns) == 26 and all(m.eps == 1e-5 for m in lns)
    assert len(bns) == 53 and all(m.eps == 1e-5 for m in bns)


def _reference_block(block: SparseMLPBlock, x: np.ndarray, swap: bool = False) -> tuple[np.ndarray, ...]:
    """Independent float64 numpy version of the §4.3 token-mixing arithmetic."""
    bn = block.BN
    mean = bn.running_mean.double().numpy()[None, :, None, None]
    var = bn.running_var.double().numpy()[None, :, None, None]
    w = bn.weight.detach().double().numpy()[None, :, None, None]
    b = bn.bias.detach().double().numpy()[None, :, None, None]
    y = (x - mean) / np.sqrt(var + 1e-5) * w + b
    erf = np.vectorize(math.erf)
    g = 0.5 * y * (1.0 + erf(y / math.sqrt(2.0)))
    wh = block.proj_h.weight.detach().double().numpy()[:, :, 0, 0]
    bh = block.proj_h.bias.detach().double().numpy()
    ww = block.proh_w.weight.detach().double().numpy()[:, :, 0, 0]
    bw = block.proh_w.bias.detach().double().numpy()
    if not swap:  # proj_h over W, proh_w over H (what upstream does)
        gh = np.einsum("vw,nchw->nchv", wh, g) + bh[None, None, None, :]
        gw = np.einsum("ih,nchw->nciw", ww, g) + bw[None, None, :, None]
    else:  # what the names suggest: proj_h over H, proh_w over W
        gh = np.einsum("ih,nchw->nciw", wh, g) + bh[None, None, :, None]
        gw = np.einsum("vw,nchw->nchv", ww, g) + bw[None, None, None, :]
    fuse = block.fuse.weight.detach().double().numpy()[:, :, 0, 0]
    cat = np.concatenate([g, gh, gw], axis=1)
    out = np.einsum("oc,nchw->nohw", fuse, cat)
    return g, gh, gw, out


@pytest.fixture(scope="module")
def small_block() -> tuple[SparseMLPBlock, torch.Tensor]:
    torch.manual_seed(1)
    block = SparseMLPBlock(grid=7, channels=5).eval()
    randomise_norms(block, seed=1)
    x = torch.randn(2, 5, 7, 7)
    return block, x


def test_token_mixing_matches_einsum_reference(small_block: tuple[SparseMLPBlock, torch.Tensor]) -> None:
    block, x = small_block
    g_ref, gh_ref, gw_ref, out_ref = _reference_block(block, x.double().numpy())
    with torch.no_grad():
        g = block.activation(block.BN(x))
        gh, gw = block.mix(g)
        out = block(x)
    np.testing.assert_allclose(g.numpy(), g_ref, atol=1e-5)
    np.testing.assert_allclose(gh.numpy(), gh_ref, atol=1e-5)
    np.testing.assert_allclose(gw.numpy(), gw_ref, atol=1e-5)
    # concat of g (not the block input), order g, gh, gw
    np.testing.assert_allclose(out.numpy(), out_ref, atol=1e-5)


def test_swapped_projections_are_detected(small_block: tuple[SparseMLPBlock, torch.Tensor]) -> None:
    """The names-suggest-it implementation must differ, so the reference test above can catch it."""
    block, x = small_block
    _, gh_sw, gw_sw, out_sw = _reference_block(block, x.double().numpy(), swap=True)
    with torch.no_grad():
        gh, gw = block.mix(block.activation(block.BN(x)))
        out = block(x)
    assert np.abs(gh.numpy() - gh_sw).max() > 0.1
    assert np.abs(gw.numpy() - gw_sw).max() > 0.1
    assert np.abs(out.numpy() - out_sw).max() > 0.1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_parity_dynamic_batch(model: nn.Module) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    randomise_norms(model, seed=2)
    x2 = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        # scale the head so logits have std ~4, as in the spec's tolerance measurements (§0.4)
        scale = 4.0 / float(model(x2).std())
        model.mlp_head[0].weight.mul_(scale)
        model.mlp_head[0].bias.mul_(scale)
    onnx_bytes = assert_onnx_batch_parity(model.eval(), x2, "input", "output", 1000, tol=1e-3)
    ops = [n.op_type for n in onnx.load_from_string(onnx_bytes).graph.node]
    assert ops.count("Erf") == 78  # exact GELU survives export
    assert ops.count("BatchNormalization") == 27  # pre-activation BNs + final BN are not folded
