"""Calibration folders: the uint8 images (and the settings) int8 is compiled with, as the calibrate stage writes
them and compile reads them.

The images are evenly spaced over the model's own shard set; the settings are the `precision:` section as it was
when they were chosen, so compile depends on this folder alone and never on the params section or the shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core.io import atomic_dir, json_bytes, read_json

PIXELS = "pixels.npy"
SETTINGS = "calibration.json"
#: the precisions that are calibrated (the others compile from the fp32 graph alone)
CALIBRATED = ("int8",)


def choose(n_images: int, wanted: int) -> list[int]:
    """`wanted` indices spread evenly over `n_images` (all of them when there are fewer), first and last included."""
    if wanted >= n_images:
        return list(range(n_images))
    return sorted({round(i * (n_images - 1) / max(wanted - 1, 1)) for i in range(wanted)})


def write(folder: Path, pixels: np.ndarray, settings: dict[str, Any]) -> None:
    """Both files, swapped in together (an owned folder only)."""
    with atomic_dir(folder, "calibration") as tmp:
        with open(tmp / PIXELS, "wb") as f:
            np.save(f, np.ascontiguousarray(pixels, np.uint8), allow_pickle=False)
        (tmp / SETTINGS).write_bytes(json_bytes(settings))


def read(folder: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A calibration folder: its uint8 NCHW pixels and its settings (`quantization`, `names`, `shards_hash`)."""
    folder = Path(folder)
    if not (folder / SETTINGS).is_file():
        raise FileNotFoundError(f"{folder}: not a calibration folder (no {SETTINGS}); run `omzoo calibrate` first")
    settings = read_json(folder / SETTINGS)
    names = settings.get("names") if isinstance(settings, dict) else None
    if not isinstance(names, list):
        raise ValueError(f"{folder / SETTINGS}: not a calibration file (no list of names); calibrate again")
    try:
        pixels = np.load(folder / PIXELS, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder / PIXELS}: unreadable ({e}); calibrate again") from None
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or len(pixels) != len(names):
        raise ValueError(f"{folder / PIXELS}: holds {pixels.dtype} {list(pixels.shape)}, not the {len(names)} uint8 "
                         f"NCHW images {SETTINGS} names; calibrate again")
    return pixels, settings
