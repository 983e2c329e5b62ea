"""Benchmark: omzoo's sharded uint8 preprocess vs the Ascend guides' one-float32-.bin-per-image baseline.

    .venv/bin/python bench/bench_preprocess.py [--n 200] [--workers N] [--dir CACHE]

Generates (or reuses) N JPEGs of ImageNet-like sizes, warms the page cache, then on the same images:
- **baseline**: what the guides' preprocess scripts do -- one process; per image PIL open + ``convert('RGB')``
  + Resize(256) + CenterCrop(224) + ToTensor + Normalize in float32, then ``tofile`` to ``<stem>.bin``;
- **omzoo**: ``omzoo.data.preprocess.preprocess(...)`` with default workers (uint8 shards + manifest).

Prints images/s, bytes per image, file count and the ratios, and checks that omzoo's shards, normalised at
load time, equal the baseline's float32 files bit for bit. Gains come only from parallel workers, writing
uint8 instead of float32, a few shard files instead of one file per image, and skipping needless copies;
never from draft/reduced decoding (that changes pixels).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from omzoo.data.preprocess import preprocess
from omzoo.data.profiles import IMAGENET_MEAN, IMAGENET_STD, PROFILES, normalize
from omzoo.data.shards import ShardSet

# Common ILSVRC2012 val sizes (most are 500 px on the long side), weighted by rough frequency.
SIZES = [(500, 375)] * 6 + [(375, 500)] * 2 + [(500, 333)] * 3 + [(333, 500), (500, 400), (500, 500), (640, 480),
                                                                  (400, 300), (800, 600), (300, 225)]  # fmt: skip


def make_images(root: Path, n: int, seed: int = 0) -> None:
    """Photo-like JPEGs: smooth colour fields + fine texture (so files are ~ImageNet-sized, 50-150 kB)."""
    marker = root / f".complete-{n}-{seed}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for k in range(n):
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        coarse = rng.integers(0, 256, size=(int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
        texture = rng.normal(0, 12, size=(h, w, 1)).astype(np.int16)
        img = Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))
        img.save(root / f"ILSVRC2012_val_{k + 1:08d}.JPEG", quality=90)
    marker.touch()


def baseline(src: Path, dst: Path) -> None:
    """The guides' script, in numpy: listdir order, float32 CHW, one .bin per image, one process."""
    dst.mkdir(parents=True)
    mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1)
    std = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".JPEG"):
            continue
        img = Image.open(src / name).convert("RGB")
        w, h = img.size  # torchvision Resize(256): short side 256, long side truncated
        new = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
        if new != (w, h):
            img = img.resize(new, Image.Resampling.BILINEAR)
        w, h = img.size  # CenterCrop(224)
        top, left = int(round((h - 224) / 2)), int(round((w - 224) / 2))
        img = img.crop((left, top, left + 224, top + 224))
        x = np.array(img, dtype=np.uint8).transpose(2, 0, 1).astype(np.float32) / np.float32(255)  # ToTensor
        x = (x - mean) / std  # Normalize
        x.tofile(dst / (name.split(".")[0] + ".bin"))


def _dir_stats(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    ap.add_argument("--workers", type=int, default=None, help="omzoo workers (default: one per core)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "omzoo-bench-preprocess",
                    help="image cache folder (reused between runs)")  # fmt: skip
    args = ap.parse_args(argv)

    src = args.dir / "images"
    t = time.perf_counter()
    make_images(src, args.n)
    print(f"images: {args.n} JPEGs in {src} ({time.perf_counter() - t:.1f} s to prepare)", file=sys.stderr)
    names = sorted(p.name for p in src.iterdir() if p.suffix == ".JPEG")
    jpeg_bytes = sum((src / n).stat().st_size for n in names)
    for n in names:  # warm the page cache so neither side pays cold reads
        (src / n).read_bytes()

    work = Path(tempfile.mkdtemp(prefix="omzoo-bench-out-"))
    try:
        t = time.perf_counter()
        baseline(src, work / "baseline")
        t_base = time.perf_counter() - t
        t = time.perf_counter()
        preprocess("imagenet", src, None, work / "omzoo", workers=args.workers, progress=False)
        t_ours = time.perf_counter() - t

        shards = ShardSet(work / "omzoo")
        k = 0
        for batch in shards.iter_batches(64):  # bit-exactness check: normalised shards == baseline .bin files
            for x in normalize(batch, PROFILES["imagenet"]):
                ref = np.fromfile(work / "baseline" / (shards.names[k].split(".")[0] + ".bin"), dtype=np.float32)
                if not np.array_equal(x.reshape(-1), ref):
                    raise SystemExit(f"MISMATCH at {shards.names[k]}")
                k += 1
        assert k == len(names)

        nb_files, nb_bytes = _dir_stats(work / "baseline")
        no_files, no_bytes = _dir_stats(work / "omzoo")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(names)
    rate_b, rate_o = n / t_base, n / t_ours
    workers = args.workers or os.cpu_count()
    print(f"\n{n} images, mean JPEG {jpeg_bytes / n / 1024:.0f} KiB, {os.cpu_count()} CPUs, omzoo workers {workers}")
    print(f"{'':24}{'images/s':>10}{'bytes/image':>14}{'files':>8}{'seconds':>9}")
    print(f"{'baseline (float32 .bin)':24}{rate_b:10.1f}{nb_bytes / n:14,.0f}{nb_files:8d}{t_base:9.2f}")
    print(f"{'omzoo (uint8 shards)':24}{rate_o:10.1f}{no_bytes / n:14,.0f}{no_files:8d}{t_ours:9.2f}")
    print(f"{'ratio omzoo/baseline':24}{rate_o / rate_b:9.2f}x{no_bytes / nb_bytes:13.3f}x{no_files / nb_files:7.3f}x")
    print("pixels: normalised omzoo shards == baseline .bin files, bit for bit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
