"""Decode → resize → centre-crop: the pixel half of a recipe (omzoo.core.recipe), applied to one image.

It reproduces torchvision ``Resize(256)`` + ``CenterCrop(224)`` + ``ToTensor`` bit for bit with Pillow alone;
the rounding rules (truncated long side, half-to-even crop offsets) are deliberate and tested -- do not
"simplify" them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from omzoo.core.recipe import Recipe
from omzoo.data import DataError

__all__ = ["crop_box", "load_rgb", "resize_crop", "resize_size"]

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image file fully and convert it to RGB (docs/models.md §0.3 step 1).

    The format comes from the file content, not its name (a PNG called ``.JPEG`` decodes as PNG).
    ``convert("RGB")`` maps L, CMYK, P and RGBA as every original pipeline does (alpha dropped, not
    composited). No draft mode or reduced decoding: those change pixels. A truncated or undecodable file
    raises :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()  # decode now, inside the try, so truncation errors surface here with the name
            if im.mode == "RGB":
                return im  # the decoded pixels stay valid after the file is closed; no copy needed
            return im.convert("RGB")
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
        if min(new) < s:  # only possible with a recipe whose resize < size
            raise DataError(f"recipe {recipe.pixels!r}: resized image {new[0]}x{new[1]} is smaller than the {s} crop")
        if new != (w, h):
            assert recipe.interpolation is not None
            img = img.resize(new, _FILTERS[recipe.interpolation])
        if new != (s, s):
            img = img.crop(crop_box(*new, s))
    hwc = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))
