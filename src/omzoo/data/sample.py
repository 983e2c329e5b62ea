"""Deterministic sample data in the real on-disk formats, for tests and smoke runs (no downloads).

``write_sample(out)`` writes:
- ``out/imagenet/val/ILSVRC2012_val_000000NN.JPEG``: 32 JPEGs of varied sizes and aspect ratios (the
  docs/models.md §0.3 worked examples, short sides below/at/above 256, a 343-px long side), one grayscale and
  one CMYK; content is smooth colour fields with a few sharp shapes, so resampling filters matter.
- ``out/imagenet/val_label.txt``: ``<file> <label>`` lines, 0-based labels in 0..999.
- ``out/cifar-10-batches-py/test_batch`` and ``batches.meta``: 64 images pickled exactly as Python 2's
  cPickle wrote the real files (protocol 2, keys and strings as ``SHORT_BINSTRING``), so both
  ``encoding="bytes"`` and ``encoding="latin1"`` load them.

- ``out/SAMPLE.json``: the seed. The folder carries omzoo's output marker (omzoo.core.io), so a later run may
  replace it and nothing else (an ``--out`` pointing at the user's own folder is refused).

Same seed → same bytes (seeded numpy, fixed JPEG settings, a hand-written pickle stream).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from omzoo.core.io import atomic_dir

__all__ = ["CIFAR_LABEL_NAMES", "IMAGE_SIZES", "SEED_FILE", "py2_pickle", "write_sample"]

SEED_FILE = "SAMPLE.json"

CIFAR_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

#: (w, h, mode) of the 32 sample JPEGs; the first ones are the cases docs/models.md §0.3 spells out.
IMAGE_SIZES: list[tuple[int, int, str]] = [
    (500, 375, "RGB"),
    (375, 500, "RGB"),
    (640, 480, "RGB"),
    (224, 300, "RGB"),  # upsampled, long side 342.86 → 342
    (256, 256, "RGB"),  # unchanged by the resize
    (600, 400, "RGB"),
    (343, 256, "RGB"),  # long side 343: crop offset 59.5 → 60
    (180, 140, "RGB"),  # short side < 256 on both axes
    (500, 333, "L"),  # grayscale JPEG
    (420, 560, "CMYK"),  # CMYK JPEG (Adobe)
    (256, 300, "RGB"),
    (300, 256, "RGB"),
    (257, 257, "RGB"),
    (255, 400, "RGB"),
    (1000, 250, "RGB"),  # very wide
    (240, 900, "RGB"),  # very tall
]


def _random_sizes(rng: np.random.Generator, n: int) -> list[tuple[int, int, str]]:
    out = []
    for _ in range(n):
        w, h = (int(v) for v in rng.integers(150, 720, size=2))
        out.append((w, h, "RGB"))
    return out


def _smooth_image(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth random colour field + stripes + a few hard-edged shapes (edges make filters differ)."""
    gh, gw = (int(v) for v in rng.integers(3, 9, size=2))
    coarse = rng.integers(0, 256, size=(gh, gw, 3), dtype=np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((w, h), Image.Resampling.BICUBIC)
    arr = np.array(img, dtype=np.float32)
    x, y = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)[:, None]
    for c in range(3):
        fx, fy = rng.uniform(0.01, 0.15, size=2)
        phase = rng.uniform(0, 2 * np.pi)
        # 40 sin(fx x + fy y + phase), separably: sin(a + b) = sin a cos b + cos a sin b
        a = fx * x + phase
        arr[..., c] += 40.0 * (np.sin(a) * np.cos(fy * y) + np.cos(a) * np.sin(fy * y))
    img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, size=2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, size=2))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return img


# --- a Python-2-style protocol-2 pickle writer -------------------------------------------------------
# Only what the CIFAR files contain: dicts, lists, str (as Python-2 byte strings), ints, bools, None and
# C-contiguous numpy arrays (numpy's own Python-2 reduce form). No memo: the files never share objects.


def _p2_str(data: bytes) -> bytes:
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data  # SHORT_BINSTRING
    return b"T" + struct.pack("<i", len(data)) + data  # BINSTRING


def _p2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])  # BININT1
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)  # BININT2
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)  # BININT
    raise ValueError(f"int {v} too large for this writer")


def _p2_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p2_dtype(dt: np.dtype) -> bytes:
    if dt.byteorder not in ("|", "=") or dt.kind not in "uib":
        raise ValueError(f"dtype {dt} not supported")
    order = b"|" if dt.itemsize == 1 else b"<"
    return (
        _p2_global("numpy", "dtype")
        + b"(" + _p2_str(f"{dt.kind}{dt.itemsize}".encode()) + _p2_int(0) + _p2_int(1) + b"tR"
        + b"(" + _p2_int(3) + _p2_str(order) + b"NNN" + _p2_int(-1) + _p2_int(-1) + _p2_int(0) + b"tb"
    )  # fmt: skip


def _p2_ndarray(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    if a.dtype.itemsize > 1 and a.dtype.byteorder == ">":
        raise ValueError("big-endian arrays not supported")
    shape = b"(" + b"".join(_p2_int(s) for s in a.shape) + b"t"
    return (
        _p2_global("numpy.core.multiarray", "_reconstruct")
        + b"(" + _p2_global("numpy", "ndarray") + b"(" + _p2_int(0) + b"t" + _p2_str(b"b") + b"tR"
        + b"(" + _p2_int(1) + shape + _p2_dtype(a.dtype) + b"\x89" + _p2_str(a.tobytes()) + b"tb"
    )  # fmt: skip


def _p2(obj: Any) -> bytes:
    if obj is None:
        return b"N"
    if isinstance(obj, bool):
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, int):
        return _p2_int(obj)
    if isinstance(obj, str):
        return _p2_str(obj.encode("latin1"))  # Python 2 str: bytes on the wire
    if isinstance(obj, bytes):
        return _p2_str(obj)
    if isinstance(obj, np.ndarray):
        return _p2_ndarray(obj)
    if isinstance(obj, list):
        return b"]" + (b"(" + b"".join(_p2(v) for v in obj) + b"e" if obj else b"")
    if isinstance(obj, dict):
        body = b"".join(_p2(k) + _p2(v) for k, v in obj.items())
        return b"}" + (b"(" + body + b"u" if obj else b"")
    raise TypeError(f"cannot pickle {type(obj).__name__} in Python-2 form")


def py2_pickle(obj: Any) -> bytes:
    """Serialise ``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` would (str → SHORT_BINSTRING/BINSTRING)."""
    return b"\x80\x02" + _p2(obj) + b"."


# --- the sample set -----------------------------------------------------------------------------------


def _write_imagenet(root: Path, rng: np.random.Generator) -> None:
    val = root / "val"
    val.mkdir(parents=True)
    sizes = IMAGE_SIZES + _random_sizes(rng, 32 - len(IMAGE_SIZES))
    lines = []
    for k, (w, h, mode) in enumerate(sizes, start=1):
        name = f"ILSVRC2012_val_{k:08d}.JPEG"
        img = _smooth_image(rng, w, h)
        if mode != "RGB":
            img = img.convert(mode)
        img.save(val / name, format="JPEG", quality=90, subsampling=2, optimize=False)
        lines.append(f"{name} {int(rng.integers(0, 1000))}\n")
    (root / "val_label.txt").write_text("".join(lines), encoding="ascii")


def _write_cifar(root: Path, rng: np.random.Generator, n: int = 64) -> None:
    root.mkdir(parents=True)
    images = np.stack([np.asarray(_smooth_image(rng, 32, 32), dtype=np.uint8) for _ in range(n)])
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n, 3 * 32 * 32))  # R plane, G, B
    labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]
    batch = {
        "batch_label": "testing batch 1 of 1",
        "labels": labels,
        "data": data,
        "filenames": [f"{CIFAR_LABEL_NAMES[lab]}_s_{k:06d}.png" for k, lab in enumerate(labels)],
    }
    meta = {"num_cases_per_batch": n, "label_names": list(CIFAR_LABEL_NAMES), "num_vis": 3 * 32 * 32}
    (root / "test_batch").write_bytes(py2_pickle(batch))
    (root / "batches.meta").write_bytes(py2_pickle(meta))


def write_sample(out: Path, seed: int = 0) -> None:
    """Write the sample set under ``out`` (replaced atomically: built in a temp dir, then swapped in)."""
    out = Path(out)
    with atomic_dir(out, "sample") as tmp:
        rng = np.random.default_rng(seed)
        _write_imagenet(tmp / "imagenet", rng)
        _write_cifar(tmp / "cifar-10-batches-py", rng)
        (tmp / SEED_FILE).write_text(json.dumps({"written_by": "omzoo sample-data", "seed": seed}) + "\n")
