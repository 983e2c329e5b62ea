"""uint8 NCHW tensor shards: a few large ``.npy`` files plus a ``manifest.json`` written last.

Why shards: DVC is slow with tens of thousands of small files (DVC.md §12), and one file per image
(the original guides' layout) wastes a syscall and an inode per sample. Why uint8: 4x smaller than
float32, shared by every model with the same pixel recipe, and normalised at load time
(``profiles.normalize``) or in-graph by a uint8-input model.

Layout of a shard directory::

    shard-00000.npy   (n0, 3, H, W) uint8, n0 = shard_size
    shard-00001.npy   ...
    manifest.json     written last and atomically; its presence means "complete"

Manifest fields: ``format`` (1), ``pixels``, ``profile``, ``shape`` [3,H,W], ``count`` (stored images),
``dataset_size`` (entries in the source, good or bad), ``n_skipped``, ``names`` and ``labels`` (``null``
when unlabelled) in dataset order, ``skipped`` [{name, reason}], ``shards`` [{file, count, sha256}],
``source`` (the data path), ``source_hash`` (see ``readers.Dataset.source_hash``: relative path + byte
size of every source file and the labels file's sha256; mtimes excluded because they are not content).
``count == dataset_size - n_skipped`` always.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from omzoo.io import atomic_write, write_json_atomic

__all__ = ["FORMAT", "MANIFEST", "ShardSet", "ShardWriter", "sha256_file", "write_manifest"]

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = 2048


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _HashingWriter:
    """File-like wrapper that hashes what ``np.lib.format.write_array`` writes, saving a re-read."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.h.update(data)
        return self.f.write(data)


class ShardWriter:
    """Accumulates uint8 CHW images in dataset order and writes full shards as they fill.

    Each shard is written to a temporary name and renamed (``omzoo.io.atomic_write``), so a shard file
    that exists is complete. ``finish`` flushes the last, short shard and returns the shard records for
    the manifest; the manifest itself is the caller's to write, last.
    """

    def __init__(self, out: Path, shape: tuple[int, int, int], shard_size: int = DEFAULT_SHARD_SIZE) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.out = Path(out)
        self.shape = tuple(shape)
        self.shard_size = shard_size
        self._buf = np.empty((shard_size, *self.shape), dtype=np.uint8)
        self._n = 0
        self.count = 0
        self.shards: list[dict[str, Any]] = []

    def add(self, chw: np.ndarray) -> None:
        if chw.shape != self.shape or chw.dtype != np.uint8:
            raise ValueError(f"expected uint8 {self.shape}, got {chw.dtype} {chw.shape}")
        self._buf[self._n] = chw
        self._n += 1
        self.count += 1
        if self._n == self.shard_size:
            self._flush()

    def add_batch(self, nchw: np.ndarray) -> None:
        for chw in nchw:
            self.add(chw)

    def _flush(self) -> None:
        if self._n == 0:
            return
        name = f"shard-{len(self.shards):05d}.npy"
        with atomic_write(self.out / name) as tmp, open(tmp, "wb") as f:
            hw = _HashingWriter(f)
            np.lib.format.write_array(hw, self._buf[: self._n], allow_pickle=False)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        self.shards.append({"file": name, "count": self._n, "sha256": hw.h.hexdigest()})
        self._n = 0

    def finish(self) -> list[dict[str, Any]]:
        self._flush()
        return self.shards


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically; call it after every shard is on disk."""
    write_json_atomic(Path(out) / MANIFEST, manifest)


class ShardSet:
    """Read-only view of a completed shard directory; memory-maps shards, so 50k images need no RAM.

    The constructor checks that the manifest exists and agrees with the shard files (names, counts,
    shapes, dtype); sha256s are checked only by :meth:`verify`, which reads every byte.
    """

    def __init__(self, path: Path | str) -> None:
        self.dir = Path(path)
        mpath = self.dir / MANIFEST
        if not mpath.is_file():
            raise FileNotFoundError(
                f"{self.dir}: no {MANIFEST}; not a shard directory, or the preprocess run did not finish"
            )
        self._manifest_bytes = mpath.read_bytes()
        try:
            m = json.loads(self._manifest_bytes)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{mpath}: invalid JSON: {exc}") from exc
        if m.get("format") != FORMAT:
            raise ValueError(f"{mpath}: unsupported shard format {m.get('format')!r} (expected {FORMAT})")
        self.manifest: dict[str, Any] = m
        shape = tuple(m["shape"])
        count = int(m["count"])
        if len(m["names"]) != count:
            raise ValueError(f"{self.dir}: manifest lists {len(m['names'])} names for count {count}")
        if m.get("labels") is not None and len(m["labels"]) != count:
            raise ValueError(f"{self.dir}: manifest lists {len(m['labels'])} labels for count {count}")
        self._arrays: list[np.ndarray] = []
        total = 0
        for rec in m["shards"]:
            f = self.dir / rec["file"]
            if not f.is_file():
                raise FileNotFoundError(f"{self.dir}: shard {rec['file']} listed in {MANIFEST} is missing")
            arr = np.load(f, mmap_mode="r", allow_pickle=False)
            if arr.dtype != np.uint8 or arr.shape[1:] != shape or arr.shape[0] != rec["count"]:
                raise ValueError(
                    f"{self.dir}: shard {rec['file']} is {arr.dtype} {arr.shape}, manifest says uint8 "
                    f"({rec['count']}, {', '.join(map(str, shape))})"
                )
            self._arrays.append(arr)
            total += arr.shape[0]
        if total != count:
            raise ValueError(f"{self.dir}: shards hold {total} images, manifest count is {count}")
        self._starts = np.cumsum([0] + [a.shape[0] for a in self._arrays])

    @property
    def root(self) -> Path:
        """The shard directory (alias of ``dir``)."""
        return self.dir

    @property
    def names(self) -> list[str]:
        return self.manifest["names"]

    @property
    def labels(self) -> np.ndarray | None:
        labels = self.manifest.get("labels")
        return None if labels is None else np.asarray(labels, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["shape"])  # type: ignore[return-value]

    @property
    def pixels(self) -> str:
        return self.manifest["pixels"]

    @property
    def hash(self) -> str:
        """sha256 of the manifest bytes: one id for the whole set (it lists every shard's sha256)."""
        return hashlib.sha256(self._manifest_bytes).hexdigest()

    def __len__(self) -> int:
        return int(self.manifest["count"])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Images ``start:stop`` in dataset order as a fresh, writable uint8 (n, 3, H, W) array."""
        start, stop = max(0, start), min(len(self), stop)
        out = np.empty((max(0, stop - start), *self.shape), dtype=np.uint8)
        pos = start
        while pos < stop:
            k = int(np.searchsorted(self._starts, pos, side="right")) - 1
            lo = pos - int(self._starts[k])
            n = min(stop - pos, self._arrays[k].shape[0] - lo)
            out[pos - start : pos - start + n] = self._arrays[k][lo : lo + n]
            pos += n
        return out

    def iter_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Consecutive batches in dataset order, crossing shard boundaries; the last may be short.

        Each batch is a fresh writable array (a copy out of the memory map), so callers may pad or
        normalise it in place and keep it after the next one is produced.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            yield self.read(start, start + batch_size)

    def verify(self) -> None:
        """Re-hash every shard and compare with the manifest (reads all the data)."""
        for rec in self.manifest["shards"]:
            digest = sha256_file(self.dir / rec["file"])
            if digest != rec["sha256"]:
                raise ValueError(f"{self.dir}: shard {rec['file']} sha256 {digest} != manifest {rec['sha256']}")
