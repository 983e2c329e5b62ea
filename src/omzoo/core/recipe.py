"""A model's preprocessing recipe (the config beside each registry entry, as timm keeps a pretrained config)
and its load-time normalisation.

A :class:`Recipe` has two halves:
- ``pixels`` names the decode → resize → centre-crop result that the uint8 shards store (omzoo.data.decode).
  Models whose recipes share ``pixels`` share one shard set: SCNet, SE-ResNeXt and TResNet all read
  ``bilinear224``, so the registry checks that they agree on the pixel half.
- ``mean``/``std`` are applied at load time by :func:`normalize`, so the shards stay uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Recipe", "normalize"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)



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
