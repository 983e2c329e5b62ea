"""Decode → resize → centre-crop: the pixel half of a recipe (omzoo.core.recipe), applied to one image.

It reproduces torchvision ``Resize(256)`` + ``CenterCrop(224)`` + ``ToTensor`` bit for bit with Pillow alone;
the rounding rules (truncated long side, half-to-even crop offsets) are deliberate and tested -- do not
"simplify" them.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from omzoo.core.io import NotRegular, open_regular
from omzoo.core.recipe import Recipe
from omzoo.data import DataError

__all__ = ["crop_box", "load_rgb", "resize_crop", "resize_size"]

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
#: the limits checked before any pixel is decoded or resized: the file's bytes, and the pixels of the image and of
#: its resized copy (Pillow's own decompression-bomb threshold; a 6000x1 image would resize to 1536000x256)
MAX_IMAGE_BYTES = 256 << 20
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
#: single-channel modes of more than 8 bits (16-bit PNG, TIFF): scaled to 8 bits, not clipped to white
_WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "I;16N")
#: what Pillow warns about, while opening or converting an image, that leaves its pixels as decoded: metadata (EXIF and
#: TIFF tags, XMP), the transparency convert("RGB") drops anyway, the base image of a malformed MPO or APNG, and the
#: pixel limit, which load_rgb checks itself (the warning comes just before its own error)
_HARMLESS = re.compile(r"EXIF|[Tt]ag |XMP|Metadata|[Tt]ransparency|MPO|APNG|exceeds limit")


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image file fully and convert it to RGB (docs/models.md §0.3 step 1).

    The format comes from the file content, not its name (a PNG called ``.JPEG`` decodes as PNG).
    ``convert("RGB")`` maps L, CMYK, P and RGBA as every original pipeline does (alpha dropped, not
    composited); 16-bit grey is scaled to 8 bits (round(v / 257)), which Pillow's convert would clip to white.
    No draft mode or reduced decoding: those change pixels. The file is opened by ``open_regular`` (a FIFO or a
    device is refused, never read) and its size in bytes and pixels checked before decoding. A truncated,
    undecodable or oversized file raises :class:`DataError` naming the file. Pillow's warnings never reach stderr:
    decoding runs under ``warnings.catch_warnings``; a harmless one (``_HARMLESS``) is dropped, any other makes the
    image a problem, one line naming it.
    """
    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _decode(path)
    odd = [" ".join(str(w.message).split()) for w in caught if not _HARMLESS.search(str(w.message))]
    if odd:
        raise DataError(f"{path}: the decoder warned: {odd[0][:200]} (its pixels are not trusted)")
    return image


def _decode(path: Path) -> Image.Image:
    """load_rgb's decoding, warnings and all."""
    try:
        with open_regular(path, MAX_IMAGE_BYTES, "image file") as f, Image.open(f) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DataError(f"{path}: {w}x{h} pixels, more than the {MAX_PIXELS} an image may have")
            im.load()  # decode now, inside the try, so truncation errors surface here with the name
            if im.mode == "RGB":
                return im  # the decoded pixels stay valid after the file is closed; no copy needed
            if im.mode in _WIDE_GREY:
                wide = np.asarray(im, dtype=np.int64)
                grey = np.clip((wide + 128) // 257, 0, 255).astype(np.uint8)
                return Image.fromarray(grey, "L").convert("RGB")
            if im.mode == "F":
                raise DataError(f"{path}: a floating-point image (mode F) has no 8-bit reading; convert it first")
            return im.convert("RGB")
    except DataError:
        raise
    except NotRegular as exc:
        raise DataError(str(exc)) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            reason = "file not found"
        elif path.exists() and path.stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise DataError(f"{path}: cannot decode image: {reason}") from exc


def resize_size(w: int, h: int, short: int) -> tuple[int, int]:
    """Target (w, h) with the short side ``short`` and the long side *truncated* (torchvision Resize(int)).

    ``int(short * long / short_side)`` in double precision, exactly as the original pipelines compute it.
    """
    if w <= h:
        return short, int(short * h / w)
    return int(short * w / h), short


def crop_box(w: int, h: int, size: int) -> tuple[int, int, int, int]:
    """Centre-crop box (left, top, right, bottom); offsets use Python ``round`` (half to even) like torchvision."""
    top = int(round((h - size) / 2))
    left = int(round((w - size) / 2))
    return left, top, left + size, top + size


def resize_crop(img: Image.Image, recipe: Recipe) -> np.ndarray:
    """Resize and centre-crop an RGB image to the recipe's uint8 CHW pixels (docs/models.md §0.3 steps 2-3).

    Short side → ``recipe.resize`` with Pillow's own antialiasing resampler (skipped when the size already
    matches), then a ``recipe.size`` centre crop. Recipes without ``resize`` (CIFAR) take the image as
    stored and require it to be exactly ``size`` x ``size``.
    """
    if img.mode != "RGB":
        raise ValueError(f"resize_crop needs an RGB image, got mode {img.mode!r}; use load_rgb()")
    w, h = img.size
    s = recipe.size
    if recipe.resize is None:
        if (w, h) != (s, s):
            raise DataError(f"recipe {recipe.pixels!r} takes {s}x{s} images as stored, got {w}x{h}")
    else:
        new = resize_size(w, h, recipe.resize)
        if new[0] * new[1] > MAX_PIXELS:
            raise DataError(f"a {w}x{h} image resizes to {new[0]}x{new[1]}, more than the {MAX_PIXELS} pixels an image "
                            "may have (an extreme aspect ratio)")
        if min(new) < s:  # only possible with a recipe whose resize < size
            raise DataError(f"recipe {recipe.pixels!r}: resized image {new[0]}x{new[1]} is smaller than the {s} crop")
        if new != (w, h):
            assert recipe.interpolation is not None
            img = img.resize(new, _FILTERS[recipe.interpolation])
        if new != (s, s):
            img = img.crop(crop_box(*new, s))
    hwc = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))
