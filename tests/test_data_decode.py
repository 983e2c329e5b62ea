"""MODELS.md §0.3: the resize/crop rules, pixel exactness of resize_crop, and the normalisation arithmetic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from omzoo.core import zoo
from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe, normalize
from omzoo.data import DataError
from omzoo.data.decode import crop_box, load_rgb, resize_crop, resize_size

#: The four recipes of the registry, by the family names the spec uses (MODELS.md §0.3).
PROFILES = {"imagenet": zoo.get("scnet50_v1d").recipe, "tresnet": zoo.get("tresnet_m").recipe,
            "smlp": zoo.get("smlpnet_tiny").recipe, "cifar": zoo.get("ran92_cifar10").recipe}

# (w, h) → resized (w, h), crop (left, top): the worked-examples table of MODELS.md §0.3
WORKED = [
    ((500, 375), (341, 256), (58, 16)),
    ((375, 500), (256, 341), (16, 58)),
    ((640, 480), (341, 256), (58, 16)),
    ((224, 300), (256, 342), (16, 59)),
    ((256, 256), (256, 256), (16, 16)),
    ((600, 400), (384, 256), (80, 16)),
    ((343, 256), (343, 256), (60, 16)),  # 343-px long side: (343-224)/2 = 59.5 → 60 (half to even)
]

# short sides below, equal to and above 256; odd sizes and extreme aspect ratios
SIZES = [
    (500, 375), (375, 500), (640, 480), (224, 300), (256, 256), (600, 400), (343, 256), (180, 140),
    (257, 999), (1001, 255), (31, 400), (255, 256), (224, 224), (299, 301), (256, 300), (333, 257),
]  # fmt: skip


def smooth_image(w: int, h: int, seed: int) -> Image.Image:
    """Smooth colours plus hard edges, so bilinear and bicubic give visibly different pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)).copy()
    img[h // 3 : h // 2, w // 4 : w // 2] = rng.integers(0, 256, size=3, dtype=np.uint8)
    img[:, ::7] //= 2
    return Image.fromarray(img, "RGB")


def reference_pixels(img: Image.Image, resample: Image.Resampling | None, short: int = 256, crop: int = 224):
    """Independent reference: exact rational resize target, Python-round offsets, numpy-slice crop."""
    w, h = img.size
    # floor of the exact quotient: an integer-ratio quotient is never within an ulp of the next integer
    new = (short, int(Fraction(short * h, w))) if w <= h else (int(Fraction(short * w, h)), short)
    if new != (w, h):
        img = img.resize(new, resample)
    arr = np.array(img)
    top = round(Fraction(arr.shape[0] - crop, 2))
    left = round(Fraction(arr.shape[1] - crop, 2))
    return arr[top : top + crop, left : left + crop].transpose(2, 0, 1)


@pytest.mark.parametrize(("size", "resized", "offsets"), WORKED)
def test_worked_examples(size, resized, offsets):
    assert resize_size(*size, 256) == resized
    left, top, right, bottom = crop_box(*resized, 224)
    assert (left, top) == offsets
    assert (right - left, bottom - top) == (224, 224)


def test_truncation_not_rounding():
    # 256*500/375 = 341.33 and 256*300/224 = 342.86: both truncated
    assert resize_size(375, 500, 256) == (256, 341)
    assert resize_size(224, 300, 256) == (256, 342)


@pytest.mark.parametrize("profile_name", ["imagenet", "smlp"])
@pytest.mark.parametrize("size", SIZES)
def test_to_pixels_matches_reference(profile_name, size):
    profile = PROFILES[profile_name]
    resample = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}[profile.interpolation]
    img = smooth_image(*size, seed=size[0] * 1000 + size[1])
    got = resize_crop(img, profile)
    assert got.dtype == np.uint8 and got.shape == (3, 224, 224) and got.flags.c_contiguous
    np.testing.assert_array_equal(got, reference_pixels(img, resample))


def test_filters_differ_and_profiles_share_pixels():
    img = smooth_image(500, 375, seed=1)
    bil = resize_crop(img, PROFILES["imagenet"])
    assert not np.array_equal(bil, resize_crop(img, PROFILES["smlp"]))
    np.testing.assert_array_equal(bil, resize_crop(img, PROFILES["tresnet"]))
    assert PROFILES["imagenet"].pixels == PROFILES["tresnet"].pixels == "bilinear224"


def test_no_resize_when_short_side_is_256():
    img = smooth_image(256, 301, seed=2)  # new size == old size: the image is only cropped
    got = resize_crop(img, PROFILES["imagenet"])
    np.testing.assert_array_equal(got, np.asarray(img)[38 : 38 + 224, 16:240].transpose(2, 0, 1))


def test_cifar_profile_takes_32x32_as_stored():
    arr = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_crop(Image.fromarray(arr), PROFILES["cifar"]), arr.transpose(2, 0, 1))
    with pytest.raises(DataError, match="32x32"):
        resize_crop(Image.fromarray(np.zeros((40, 32, 3), np.uint8)), PROFILES["cifar"])


def _torch_reference(x: np.ndarray, mean, std) -> np.ndarray:
    """torchvision's arithmetic: ToTensor (float / 255) then Normalize (sub_ then div_), float32."""
    t = torch.from_numpy(x.copy()).float().div(255)
    if mean is not None:
        m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        t = t.sub_(m).div_(s)
    return t.numpy()


@pytest.mark.parametrize("profile_name", ["imagenet", "tresnet", "smlp", "cifar"])
def test_normalize_arithmetic(profile_name):
    profile = PROFILES[profile_name]
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(4, 3, 16, 16), dtype=np.uint8)
    x[1] = np.arange(3 * 16 * 16).reshape(3, 16, 16) % 256  # every byte value, every channel
    got = normalize(x, profile)
    assert got.dtype == np.float32 and got.shape == x.shape

    # step 1 in float64 then cast: bit-exact (double has > 2*24+2 bits, so one division rounds correctly)
    scaled = (x.astype(np.float64) / 255.0).astype(np.float32)
    if profile.mean is None:
        np.testing.assert_array_equal(got, scaled)
    else:
        # step 2 in float64 from the float32 step-1 result, then cast: two float32 roundings vs one -> <= 1 ulp
        m = np.asarray(profile.mean, np.float32).astype(np.float64).reshape(3, 1, 1)
        s = np.asarray(profile.std, np.float32).astype(np.float64).reshape(3, 1, 1)
        ref = ((scaled.astype(np.float64) - m) / s).astype(np.float32)
        np.testing.assert_array_max_ulp(got, ref, maxulp=1)
    # and bit-exact against the original code's own operations (torch float32, sub_ then div_)
    np.testing.assert_array_equal(got, _torch_reference(x, profile.mean, profile.std))
    np.testing.assert_array_equal(normalize(x[2], profile), got[2])  # CHW works too


def test_normalize_differs_from_fused_form():
    """The fused x*a+b form is not bit-exact: this test guards the documented operation order."""
    x = np.arange(256, dtype=np.uint8).repeat(3).reshape(1, 3, 16, 16)
    got = normalize(x, PROFILES["imagenet"])
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1)
    fused = x.astype(np.float32) * (np.float32(1) / (np.float32(255) * std)) - mean / std
    assert not np.array_equal(got, fused)
    np.testing.assert_allclose(got, fused, rtol=0, atol=1e-6)


def test_normalize_rejects_bad_input_and_recipes_are_whole():
    with pytest.raises(TypeError):
        normalize(np.zeros((1, 3, 4, 4), np.float32), PROFILES["imagenet"])
    with pytest.raises(ValueError, match="both mean and std"):
        Recipe("x224", 224, 256, "bilinear", IMAGENET_MEAN, None)
    with pytest.raises(ValueError, match="interpolation"):
        Recipe("x224", 224, 256, None)


def test_each_model_carries_its_recipe_and_pixels_resolve():
    assert zoo.get("seresnext101_32x4d").recipe == PROFILES["imagenet"]
    assert PROFILES["imagenet"].mean == IMAGENET_MEAN and PROFILES["tresnet"].mean is None
    assert PROFILES["smlp"].interpolation == "bicubic" and PROFILES["cifar"].resize is None
    assert zoo.pixel_recipe("bicubic224").pixels == "bicubic224"
    assert zoo.pixel_recipe("bilinear224").same_pixels(PROFILES["tresnet"])
    with pytest.raises(ValueError, match="unknown pixels 'nope'"):
        zoo.pixel_recipe("nope")


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA", "RGB"])
def test_load_rgb_converts_like_pil(tmp_path: Path, mode: str):
    img = smooth_image(50, 40, seed=4)
    src = img.convert(mode) if mode != "P" else img.quantize(64)
    if mode in ("RGBA", "LA"):
        alpha = Image.linear_gradient("L").resize((50, 40))
        src.putalpha(alpha)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    src.save(path)
    got = load_rgb(path)
    assert got.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(got), np.asarray(Image.open(path).convert("RGB")))


def test_load_rgb_errors_name_the_file(tmp_path: Path):
    empty = tmp_path / "empty.JPEG"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.JPEG.*0 bytes"):
        load_rgb(empty)
    buf = tmp_path / "cut.JPEG"
    smooth_image(300, 200, seed=5).save(buf, format="JPEG")
    buf.write_bytes(buf.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cut\.JPEG"):
        load_rgb(buf)
    with pytest.raises(DataError, match=r"missing\.JPEG"):
        load_rgb(tmp_path / "missing.JPEG")


def test_png_pipeline_end_to_end(tmp_path: Path):
    """PNG on disk (decoder-independent) → load_rgb → resize_crop equals the in-memory reference."""
    img = smooth_image(375, 500, seed=6)
    img.save(tmp_path / "a.png")
    np.testing.assert_array_equal(
        resize_crop(load_rgb(tmp_path / "a.png"), PROFILES["smlp"]), reference_pixels(img, Image.Resampling.BICUBIC)
    )
