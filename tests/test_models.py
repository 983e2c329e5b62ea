"""Fidelity for all five registry models, as a user meets it: a published-container checkpoint with
seeded random weights (BN statistics and affine parameters randomised, logits at std ≈ 4) loads strictly,
exports to ONNX (float32 and uint8 input), simplifies, and gives torch's logits in ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo.core import zoo
from omzoo.core.checkpoints import CheckpointError, load_strict, save_container
from omzoo.core.model import load_model, random_model
from omzoo.core.onnxgraph import ort_logits
from omzoo.core.recipe import normalize
from omzoo.stages.export import export_onnx
from omzoo.stages.simplify import simplify

MODELS = list(zoo.REGISTRY)
TOL = 1e-3  # MODELS.md §0.4: fp32 parity at logit std 4


@pytest.fixture(scope="module", params=MODELS)
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(spec, reference model, checkpoint path in the published container, pixels, torch logits)."""
    spec = zoo.get(request.param)
    model = random_model(spec, seed=1)
    path = tmp_path_factory.mktemp(spec.id) / spec.checkpoint_file
    save_container(model.state_dict(), path, spec.container)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, *spec.input_size), dtype=np.uint8)
    x = normalize(pixels, spec.recipe)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    return spec, model, path, pixels, x, logits


def test_registry_entry_is_complete(published) -> None:
    spec, model, *_ = published
    assert sum(p.numel() for p in model.parameters()) == spec.param_count
    assert spec.recipe.shape == spec.input_size
    assert spec.published_accuracy[spec.reference_platform]
    assert all(bs in (1, 4, 8, 16, 32, 64) for table in spec.published_throughput.values() for bs in table)


def test_strict_round_trip_gives_identical_logits(published) -> None:
    spec, _, path, _, x, logits = published
    loaded = load_model(spec, path)
    with torch.no_grad():
        again = loaded(torch.from_numpy(x)).numpy()
    assert 2.0 < logits.std() < 8.0, "random weights should give logits at std ≈ 4"
    np.testing.assert_array_equal(again, logits)


def test_onnx_float32_and_uint8_match_torch(published, tmp_path: Path) -> None:
    spec, model, _, pixels, x, logits = published
    f32 = tmp_path / "f32.onnx"
    u8 = tmp_path / "u8.onnx"
    assert export_onnx(model, spec, f32, input_dtype="float32")["opset"] == 11
    export_onnx(model, spec, u8, input_dtype="uint8")
    scale = 4.0 / logits.std()
    assert np.abs(ort_logits(f32, x) - logits).max() * scale < TOL
    assert np.abs(ort_logits(u8, pixels) - logits).max() * scale < TOL
    info = simplify(u8, tmp_path / "u8.sim.onnx")
    assert info["max_abs_diff"] * scale < TOL
    assert info["nodes_after"] <= info["nodes_before"]
    import onnx

    sim = onnx.load(str(tmp_path / "u8.sim.onnx"))
    assert sim.graph.input[0].name == spec.input_name and sim.graph.output[0].name == spec.output_name
    assert sim.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # batch stays dynamic


def test_wrong_checkpoint_gets_the_clear_error(published) -> None:
    spec, _, path, *_ = published
    other = zoo.get(MODELS[(MODELS.index(spec.id) + 1) % len(MODELS)])
    with pytest.raises(CheckpointError) as e:
        load_strict(other.build(), path)
    assert str(path) in str(e.value) and "missing" in str(e.value) and "unexpected" in str(e.value)
