"""omzoo.core.model: the uint8-input wrapper, seeded random models and checkpoints, strict loading with the
branch's options; and fidelity for the registry models as a user meets them: a published-container checkpoint
with seeded random weights (BN statistics and affine parameters randomised, logits at std ≈ 4) loads strictly,
exports to ONNX (float32 and uint8 input), simplifies, and gives torch's logits in ONNX Runtime. All five models
are in the default run: their export and parity are what the pipeline promises."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo.core import zoo
from omzoo.core.checkpoints import CheckpointError, load_strict, save_container
from omzoo.core.model import PixelInput, load_model, random_checkpoint, random_model
from omzoo.core.onnxgraph import ort_logits
from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe, normalize
from omzoo.stages.export import export_onnx
from omzoo.stages.simplify import simplify

MODELS = list(zoo.REGISTRY)
TOL = 1e-3  # docs/models.md §0.4: fp32 parity at logit std 4
#: tests/toy/toynet.py (BN and a head in 158 parameters) behind a RAN-92-like entry: random_model's and
#: load_model's logic in milliseconds
TOY = dataclasses.replace(zoo.get("ran92_cifar10"), id="toynet", arch="toy.toynet:toynet", container="state_dict",
                          param_count=158, options={"width": 4})


def _state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("recipe", [Recipe("c", 32, None, None), Recipe("c", 32, None, None, IMAGENET_MEAN,
                                                                            IMAGENET_STD)], ids=["x255", "meanstd"])
def test_pixel_input_is_normalize_then_the_model_bit_for_bit(recipe: Recipe) -> None:
    """The uint8 graph's arithmetic is normalize's, so its logits equal the float32 graph's on normalised pixels;
    mean and std are not saved, so the wrapped model's checkpoint keys are the model's own."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1)
    wrapped = PixelInput(conv, recipe.mean, recipe.std)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16), dtype=np.uint8)
    pixels[1] = np.arange(3 * 16 * 16).reshape(3, 16, 16) % 256  # every byte value, every channel
    with torch.no_grad():
        got = wrapped(torch.from_numpy(pixels)).numpy()
        ref = conv(torch.from_numpy(normalize(pixels, recipe))).numpy()
    np.testing.assert_array_equal(got, ref)
    assert list(wrapped.state_dict()) == [f"model.{k}" for k in conv.state_dict()]


def test_random_model_is_seeded_calibrated_and_in_eval(tmp_path: Path) -> None:
    a, other = random_model(TOY, seed=1), random_model(TOY, seed=2)
    random_checkpoint(TOY, tmp_path / "w.pth", seed=1)  # the same seed gives the same weights again
    again = load_model(TOY, tmp_path / "w.pth")
    assert _state(a).keys() == _state(again).keys() == _state(other).keys()
    assert all(np.array_equal(v, _state(again)[k]) for k, v in _state(a).items())
    assert not all(np.array_equal(v, _state(other)[k]) for k, v in _state(a).items())
    assert not a.training and not again.training
    assert a.bn.momentum == 0.1  # the calibration pass's cumulative average is undone
    assert not torch.allclose(a.bn.running_var, torch.ones(4)) and not torch.allclose(a.bn.weight, torch.ones(4))
    # the head is centred and scaled on the seed's calibration batch: logits at std 4, every class mean 0
    pixels = np.random.default_rng(1).integers(0, 256, size=(8, *TOY.input_size), dtype=np.uint8)
    with torch.no_grad():
        logits = a(torch.from_numpy(normalize(pixels, TOY.recipe)))
    assert float(logits.std()) == pytest.approx(4.0, rel=1e-4)
    assert float(logits.mean(0).abs().max()) < 1e-4


def test_load_model_builds_with_the_branch_options(tmp_path: Path) -> None:
    """A checkpoint of the 8-wide ToyNet loads into the entry with `width: 8` and into no other."""
    wide = TOY.with_options({"width": 8})
    random_checkpoint(wide, tmp_path / "w.pth")
    assert load_model(wide, tmp_path / "w.pth").bn.num_features == 8
    with pytest.raises(CheckpointError, match="w.pth"):
        load_model(TOY, tmp_path / "w.pth")


@pytest.fixture(scope="module", params=list(MODELS))
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
