"""omzoo.core.model: the uint8-input wrapper, seeded random models and checkpoints, strict loading with the
branch's options; and the registry models as a user meets them (conftest.py `published`): a published-container
checkpoint with seeded random weights (BN statistics and affine parameters randomised, logits at std ≈ 4) loads
strictly and gives the same logits, and another model's checkpoint is refused by name. Their export and
simplification are tested in test_export.py and test_simplify.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo.core import zoo
from omzoo.core.checkpoints import CheckpointError, load_strict
from omzoo.core.model import PixelInput, load_model, random_checkpoint, random_model
from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe, normalize

MODELS = list(zoo.REGISTRY)
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


def test_strict_round_trip_gives_identical_logits(published) -> None:
    loaded = load_model(published.spec, published.checkpoint)
    with torch.no_grad():
        again = loaded(torch.from_numpy(published.x)).numpy()
    assert 2.0 < published.logits.std() < 8.0, "random weights should give logits at std ≈ 4"
    np.testing.assert_array_equal(again, published.logits)


def test_wrong_checkpoint_gets_the_clear_error(published) -> None:
    spec, path = published.spec, published.checkpoint
    other = zoo.get(MODELS[(MODELS.index(spec.id) + 1) % len(MODELS)])
    with pytest.raises(CheckpointError) as e:
        load_strict(other.build(), path)
    assert str(path) in str(e.value) and "missing" in str(e.value) and "unexpected" in str(e.value)
