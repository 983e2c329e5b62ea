"""omzoo.data.decode (docs/models.md §0.3): the resize/crop rules, pixel exactness of resize_crop, and
loading any image mode as RGB with errors that name the file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omzoo.core import zoo
from omzoo.data import DataError
from omzoo.data.decode import crop_box, load_rgb, resize_crop, resize_size

#: The four recipes of the registry, by the family names the spec uses (docs/models.md §0.3).
PROFILES = {"imagenet": zoo.get("scnet50_v1d").recipe, "tresnet": zoo.get("tresnet_m").recipe,
            "smlp": zoo.get("smlpnet_tiny").recipe, "cifar": zoo.get("ran92_cifar10").recipe}

# (w, h) → resized (w, h), crop (left, top): the worked-examples table of docs/models.md §0.3
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


def test_a_16_bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    grey = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 4)
    Image.fromarray((grey * 257).astype(np.uint16)).save(tmp_path / "g.png")
    rgb = np.asarray(load_rgb(tmp_path / "g.png"))
    assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == grey).all() and (rgb[..., 2] == grey).all()


def test_pixel_limits_are_checked_before_decoding_and_resizing(tmp_path: Path) -> None:
    Image.new("RGB", (6000, 1)).save(tmp_path / "wide.png")
    with pytest.raises(DataError, match="a 6000x1 image resizes to 1536000x256"):
        resize_crop(load_rgb(tmp_path / "wide.png"), zoo.pixel_recipe("bilinear224"))


def test_a_fifo_named_like_an_image_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(DataError, match="x.png: is a FIFO"):
        load_rgb(tmp_path / "x.png")


def test_a_harmless_decoder_warning_never_reaches_stderr(tmp_path: Path) -> None:
    """D20: a palette PNG with byte transparency makes Pillow warn while converting; the warning stays inside
    load_rgb (the alpha is dropped as documented) and the pixels are the palette's colours."""
    import warnings

    rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    path = tmp_path / "t.png"
    palette = Image.fromarray(rgb).convert("P")
    palette.save(path, transparency=bytes([0] * 10 + [255] * 246))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning that escapes fails the test
        img = load_rgb(path)
    assert img.mode == "RGB" and np.array_equal(np.asarray(img), np.asarray(palette.convert("RGB")))


def test_any_other_decoder_warning_is_one_line_naming_the_image(tmp_path: Path) -> None:
    """An ICO (named .png: the format comes from the content) whose directory says 16x16 around a 32x32 image: Pillow
    warns that the image is not the expected size; the image is a problem naming it, the warning never printed."""
    import io
    import warnings

    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="ICO", sizes=[(32, 32)])
    data = bytearray(buf.getvalue())
    data[6:8] = bytes([16, 16])  # the first directory entry's width and height
    path = tmp_path / "odd.png"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(), pytest.raises(DataError, match=r"odd.png: the decoder warned: Image was not the "
                                                                    r"expected size \(its pixels are not trusted\)"):
        warnings.simplefilter("error")
        load_rgb(path)
