"""Preprocessing recipes (omzoo.core.recipe): what a Recipe accepts, when two share pixels, and normalize's
arithmetic (docs/models.md §0.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omzoo.core import zoo
from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe, normalize

IMAGENET = Recipe("bilinear224", 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
#: the registry's distinct recipes, in registry order (SCNet and SE-ResNeXt share one)
RECIPES = list(dict.fromkeys(s.recipe for s in zoo.REGISTRY.values()))


def _name(recipe: Recipe) -> str:
    return f"{recipe.pixels}-{'x255' if recipe.mean is None else 'meanstd'}"


def test_the_registry_has_four_distinct_recipes() -> None:
    assert [_name(r) for r in RECIPES] == ["bilinear224-meanstd", "bilinear224-x255", "bicubic224-meanstd",
                                           "cifar32-x255"]


@pytest.mark.parametrize(("args", "message"), [
    (("x224", 224, 256, "bilinear", IMAGENET_MEAN, None), "recipe 'x224': give both mean and std, or neither"),
    (("x224", 224, 256, "bilinear", None, IMAGENET_STD), "recipe 'x224': give both mean and std, or neither"),
    (("x224", 224, 256, None), "recipe 'x224': a resize needs an interpolation, and only a resize has one"),
    (("x32", 32, None, "bicubic"), "recipe 'x32': a resize needs an interpolation, and only a resize has one"),
])
def test_a_recipe_is_whole_or_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError) as e:
        Recipe(*args)
    assert str(e.value) == message


def test_shape_and_same_pixels() -> None:
    assert IMAGENET.shape == (3, 224, 224) and Recipe("cifar32", 32, None, None).shape == (3, 32, 32)
    assert IMAGENET.same_pixels(Recipe("bilinear224", 224, 256, "bilinear"))  # mean/std are not pixels
    for other in (Recipe("bilinear224", 224, 256, "bicubic"), Recipe("bilinear224", 224, 232, "bilinear"),
                  Recipe("bilinear224", 192, 256, "bilinear"), Recipe("b224", 224, 256, "bilinear")):
        assert not IMAGENET.same_pixels(other) and not other.same_pixels(IMAGENET), other


def _torch_reference(x: np.ndarray, mean, std) -> np.ndarray:
    """torchvision's arithmetic: ToTensor (float / 255) then Normalize (sub_ then div_), float32."""
    t = torch.from_numpy(x.copy()).float().div(255)
    if mean is not None:
        m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        t = t.sub_(m).div_(s)
    return t.numpy()


@pytest.mark.parametrize("recipe", RECIPES, ids=_name)
def test_normalize_arithmetic(recipe: Recipe) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(4, 3, 16, 16), dtype=np.uint8)
    x[1] = np.arange(3 * 16 * 16).reshape(3, 16, 16) % 256  # every byte value, every channel
    before = x.copy()
    got = normalize(x, recipe)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(x, before)  # the pixels are not touched

    # step 1 in float64 then cast: bit-exact (double has > 2*24+2 bits, so one division rounds correctly)
    scaled = (x.astype(np.float64) / 255.0).astype(np.float32)
    if recipe.mean is None:
        np.testing.assert_array_equal(got, scaled)
    else:
        # step 2 in float64 from the float32 step-1 result, then cast: two float32 roundings vs one -> <= 1 ulp
        m = np.asarray(recipe.mean, np.float32).astype(np.float64).reshape(3, 1, 1)
        s = np.asarray(recipe.std, np.float32).astype(np.float64).reshape(3, 1, 1)
        ref = ((scaled.astype(np.float64) - m) / s).astype(np.float32)
        np.testing.assert_array_max_ulp(got, ref, maxulp=1)
    # and bit-exact against the original code's own operations (torch float32, sub_ then div_)
    np.testing.assert_array_equal(got, _torch_reference(x, recipe.mean, recipe.std))
    np.testing.assert_array_equal(normalize(x[2], recipe), got[2])  # CHW works too


def test_normalize_differs_from_fused_form() -> None:
    """The fused x*a+b form is not bit-exact: this test guards the documented operation order."""
    x = np.arange(256, dtype=np.uint8).repeat(3).reshape(1, 3, 16, 16)
    got = normalize(x, IMAGENET)
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1)
    fused = x.astype(np.float32) * (np.float32(1) / (np.float32(255) * std)) - mean / std
    assert not np.array_equal(got, fused)
    np.testing.assert_allclose(got, fused, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("x", "error", "message"), [
    (np.zeros((1, 3, 4, 4), np.float32), TypeError, "normalize expects uint8 pixels, got float32"),
    (np.zeros((4, 4, 3), np.uint8), ValueError,
     r"normalize expects CHW or NCHW with 3 channels, got shape \(4, 4, 3\)"),
    (np.zeros((3, 4), np.uint8), ValueError, r"got shape \(3, 4\)"),
    (np.zeros((1, 1, 3, 4, 4), np.uint8), ValueError, r"got shape \(1, 1, 3, 4, 4\)"),
])
def test_normalize_rejects_what_is_not_uint8_chw(x: np.ndarray, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        normalize(x, IMAGENET)
