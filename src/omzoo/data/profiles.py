"""Preprocessing profiles: the exact pixel recipe and load-time normalisation of each model family.

A profile has two halves:
- ``pixels`` names the decode → resize → centre-crop recipe whose uint8 result the shards store
  (MODELS.md §0.3 steps 1-3). Profiles with the same ``pixels`` share one shard set: SCNet, SE-ResNeXt and
  TResNet all read ``bilinear224``.
- ``mean``/``std`` are applied at load time by :func:`normalize` (steps 4-5), so the shards stay uint8.

The recipe reproduces torchvision ``Resize(256)`` + ``CenterCrop(224)`` + ``ToTensor`` [+ ``Normalize``]
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
    "PIXELS",
    "PROFILES",
    "Profile",
    "get_profile",
    "load_rgb",
    "normalize",
    "resize_size",
    "crop_box",
    "to_pixels",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class Profile:
    """One preprocessing recipe. ``mean``/``std`` None means ``x / 255`` only (TResNet, RAN)."""

    name: str
    pixels: str  # the uint8 shard variant this profile reads
    size: int  # centre-crop side (224), or the stored side when there is no resize (CIFAR: 32)
    resize: int | None  # target short side before the crop; None = use the image as stored
    interpolation: Literal["bilinear", "bicubic"] | None
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None

    @property
    def normalized(self) -> bool:
        """True when :func:`normalize` subtracts a mean and divides by a std after ``/255``."""
        return self.mean is not None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        # SCNet-50 v1d, SE-ResNeXt-101 (MODELS.md §1.5, §2.6)
        Profile("imagenet", "bilinear224", 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
        # TResNet-M: timm mean (0,0,0) std (1,1,1) → x/255 only (§3.5)
        Profile("tresnet", "bilinear224", 224, 256, "bilinear", None, None),
        # sMLPNet-T: PIL bicubic (§4.5)
        Profile("smlp", "bicubic224", 224, 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
        # RAN-92 CIFAR-10: ToTensor only, 32x32 as stored (§5.6)
        Profile("cifar", "cifar32", 32, None, None, None, None),
    )
}

#: Pixel-only views of the recipes, one per shard variant: what ``preprocess --profile bilinear224`` means.
#: They carry no mean/std; :func:`normalize` refuses them so a model never gets the wrong normalisation.
PIXELS: dict[str, Profile] = {}
for _p in PROFILES.values():
    PIXELS.setdefault(_p.pixels, Profile(_p.pixels, _p.pixels, _p.size, _p.resize, _p.interpolation, None, None))
del _p


def get_profile(name: str | Profile) -> Profile:
    """Resolve a profile name (``imagenet``), a pixels name (``bilinear224``) or a model id (``tresnet_m``)."""
    if isinstance(name, Profile):
        return name
    if name in PROFILES:
        return PROFILES[name]
    if name in PIXELS:
        return PIXELS[name]
    from omzoo import zoo  # lazy: zoo imports torch, which the data workers do not need

    try:
        spec = zoo.get(name)
    except KeyError:
        known = ", ".join([*PROFILES, *PIXELS, *zoo.REGISTRY])
        raise KeyError(f"unknown profile, pixels name or model id {name!r}; known: {known}") from None
    return PROFILES[spec.profile]


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


def to_pixels(img: Image.Image, profile: Profile) -> np.ndarray:
    """Resize and centre-crop an RGB image to the profile's uint8 CHW pixels (MODELS.md §0.3 steps 2-3).

    Short side → ``profile.resize`` with Pillow's own antialiasing resampler (skipped when the size already
    matches), then a ``profile.size`` centre crop. Profiles without ``resize`` (CIFAR) take the image as
    stored and require it to be exactly ``size`` x ``size``.
    """
    if img.mode != "RGB":
        raise ValueError(f"to_pixels needs an RGB image, got mode {img.mode!r}; use load_rgb()")
    w, h = img.size
    s = profile.size
    if profile.resize is None:
        if (w, h) != (s, s):
            raise DataError(f"profile {profile.name!r} takes {s}x{s} images as stored, got {w}x{h}")
    else:
        new = resize_size(w, h, profile.resize)
        if min(new) < s:  # only possible with a profile whose resize < size
            raise DataError(f"profile {profile.name!r}: resized image {new[0]}x{new[1]} is smaller than the {s} crop")
        if new != (w, h):
            assert profile.interpolation is not None
            img = img.resize(new, _FILTERS[profile.interpolation])
        if new != (s, s):
            img = img.crop(crop_box(*new, s))
    hwc = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def normalize(x: np.ndarray, profile: Profile) -> np.ndarray:
    """uint8 pixels (NCHW or CHW) → the model's float32 input. THE load-time normalisation.

    Arithmetic, in this order, every step in float32 (this is what the originals compute, and what the
    uint8-input ONNX graph must replicate node for node to be bit-exact):

    1. ``x = x.astype(float32) / float32(255)``   (``ToTensor``; timm's ``(x - 0) / 255`` gives the same bits)
    2. if the profile has mean/std, per channel c:
       ``x = (x - float32(mean[c])) / float32(std[c])``   -- subtraction first, then division.

    Do not fuse into ``x * a + b`` or fold ``/255`` into the std: that differs by ~1 ulp.
    """
    if profile.name in PIXELS and profile.name not in PROFILES:
        raise ValueError(
            f"{profile.name!r} is a pixels-only recipe without normalisation; pass the model's profile "
            f"({', '.join(n for n, p in PROFILES.items() if p.pixels == profile.pixels)})"
        )
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"normalize expects uint8 pixels, got {x.dtype}")
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"normalize expects CHW or NCHW with 3 channels, got shape {x.shape}")
    out = x.astype(np.float32)
    np.divide(out, np.float32(255), out=out)
    if profile.mean is not None:
        assert profile.std is not None
        mean = np.asarray(profile.mean, dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(profile.std, dtype=np.float32).reshape(3, 1, 1)
        np.subtract(out, mean, out=out)
        np.divide(out, std, out=out)
    return out
