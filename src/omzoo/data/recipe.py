"""The preprocessing recipe of a model: pixel decode/resize/crop, and the load-time normalisation.

A :class:`Recipe` lives in each registry entry (omzoo.zoo), the way timm keeps a pretrained config beside
each model. It has two halves:
- ``pixels`` names the decode → resize → centre-crop result that the uint8 shards store (MODELS.md §0.3
  steps 1-3). Models whose recipes share ``pixels`` share one shard set: SCNet, SE-ResNeXt and TResNet all
  read ``bilinear224``, so the registry checks that they agree on the pixel half.
- ``mean``/``std`` are applied at load time by :func:`normalize` (steps 4-5), so the shards stay uint8.

The pixel half reproduces torchvision ``Resize(256)`` + ``CenterCrop(224)`` + ``ToTensor`` [+ ``Normalize``]
bit for bit with Pillow alone; the rounding rules (truncated long side, half-to-even crop offsets,
subtraction-then-division) are deliberate and tested -- do not "simplify" them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from omzoo.data import DataError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Recipe",
    "crop_box",
    "load_rgb",
    "normalize",
    "resize_size",
    "to_pixels",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Recipe:
    """One model's preprocessing. ``mean``/``std`` None means ``x / 255`` only (TResNet, RAN)."""

    pixels: str  # the uint8 shard variant it reads (also the `shards` key in params.yaml)
    size: int  # centre-crop side (224), or the stored side when there is no resize (CIFAR: 32)
    resize: int | None  # target short side before the crop; None = use the image as stored
    interpolation: Literal["bilinear", "bicubic"] | None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"recipe {self.pixels!r}: give both mean and std, or neither")
        if (self.resize is None) != (self.interpolation is None):
            raise ValueError(f"recipe {self.pixels!r}: a resize needs an interpolation, and only a resize has one")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def same_pixels(self, other: Recipe) -> bool:
        """Whether two recipes produce the same uint8 pixels (and so may share one shard set)."""
        return (self.pixels, self.size, self.resize, self.interpolation) == (
            other.pixels, other.size, other.resize, other.interpolation)


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image file fully and convert it to RGB (MODELS.md §0.3 step 1).

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


def to_pixels(img: Image.Image, recipe: Recipe) -> np.ndarray:
    """Resize and centre-crop an RGB image to the recipe's uint8 CHW pixels (MODELS.md §0.3 steps 2-3).

    Short side → ``recipe.resize`` with Pillow's own antialiasing resampler (skipped when the size already
    matches), then a ``recipe.size`` centre crop. Recipes without ``resize`` (CIFAR) take the image as
    stored and require it to be exactly ``size`` x ``size``.
    """
    if img.mode != "RGB":
        raise ValueError(f"to_pixels needs an RGB image, got mode {img.mode!r}; use load_rgb()")
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


def normalize(x: np.ndarray, recipe: Recipe) -> np.ndarray:
    """uint8 pixels (NCHW or CHW) → the model's float32 input. THE load-time normalisation.

    Arithmetic, in this order, every step in float32 (this is what the originals compute, and what the
    uint8-input ONNX graph must replicate node for node to be bit-exact):

    1. ``x = x.astype(float32) / float32(255)``   (``ToTensor``; timm's ``(x - 0) / 255`` gives the same bits)
    2. if the recipe has mean/std, per channel c:
       ``x = (x - float32(mean[c])) / float32(std[c])``   -- subtraction first, then division.

    Do not fuse into ``x * a + b`` or fold ``/255`` into the std: that differs by ~1 ulp.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"normalize expects uint8 pixels, got {x.dtype}")
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"normalize expects CHW or NCHW with 3 channels, got shape {x.shape}")
    out = x.astype(np.float32)
    np.divide(out, np.float32(255), out=out)
    if recipe.mean is not None:
        assert recipe.std is not None
        mean = np.asarray(recipe.mean, dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(recipe.std, dtype=np.float32).reshape(3, 1, 1)
        np.subtract(out, mean, out=out)
        np.divide(out, std, out=out)
    return out
