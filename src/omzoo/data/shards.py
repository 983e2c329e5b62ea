"""uint8 NCHW tensor shards: a few large ``.npy`` files plus a ``manifest.json`` written last.

Why shards: DVC is slow with tens of thousands of small files (docs/dvc.md §12), and one file per image
(the original guides' layout) wastes a syscall and an inode per sample. Why uint8: 4x smaller than
float32, shared by every model with the same pixel recipe, and normalised at load time
(``omzoo.core.recipe.normalize``) or in-graph by a uint8-input model.

Layout of a shard directory::

    shard-00000.npy   (n0, 3, H, W) uint8, n0 = shard_size
    shard-00001.npy   ...
    manifest.json     written last and atomically; its presence means "complete"

Manifest fields: ``format`` (1), ``pixels``, ``recipe`` (its pixel half), ``shape`` [3,H,W], ``count`` (stored images),
``dataset_size`` (entries in the source, good or bad), ``n_skipped``, ``kind`` and ``num_classes`` (the reader's),
``names`` and ``labels`` (``null`` when unlabelled) in dataset order, ``skipped`` [{name, reason}],
``shards`` [{file, count, sha256}], ``source`` (the data path), ``source_hash`` (see
``readers.Dataset.source_hash``: relative path + byte size of every source file and the labels file's sha256;
mtimes excluded because they are not content).
``count == dataset_size - n_skipped`` always.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from omzoo.core.io import sha256_file, write_json_atomic
from omzoo.core.params import PreprocessConfig, positive_int

__all__ = ["FORMAT", "MANIFEST", "ShardSet", "ShardWriter", "write_manifest"]

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_SHARD_SIZE = PreprocessConfig.shard_size


class _HashingWriter:
    """File-like wrapper that hashes what ``np.lib.format.write_array`` writes, saving a re-read."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.h.update(data)
        return self.f.write(data)


class ShardWriter:
    """Streams uint8 CHW images, in dataset order, into shard files of ``shard_size`` images.

    Images go straight to the open shard file (and its running sha256) as they arrive: no shard-sized
    buffer, whose first touch costs more than the write itself (a 300 MB fresh allocation faults in
    transparent huge pages). The ``.npy`` header needs the shard's count up front: it is ``shard_size``,
    or fewer for the last shard when ``expected`` (images to come if none is dropped; call :meth:`skip`
    for each dropped one) says so. Only when that guess was wrong -- dropped images in the last shard --
    is the header rewritten and the file re-hashed.

    Each shard is written under a temporary name and renamed when complete, so a ``shard-*.npy`` that
    exists is whole. :meth:`finish` closes the last shard and returns the records for the manifest, which
    the caller writes last. Use as a context manager so an error closes the open file.
    """

    def __init__(
        self,
        out: Path,
        shape: tuple[int, int, int],
        shard_size: int = DEFAULT_SHARD_SIZE,
        expected: int | None = None,
    ) -> None:
        positive_int(shard_size, "shard_size")
        self.out = Path(out)
        self.shape = tuple(shape)
        self.shard_size = shard_size
        self.expected = expected
        self.count = 0
        self.shards: list[dict[str, Any]] = []
        self._f: BinaryIO | None = None
        self._hw: _HashingWriter | None = None
        self._tmp: Path | None = None
        self._n = 0
        self._header_n = 0

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close an unfinished shard without publishing it (its temporary file is removed)."""
        if self._f is not None:
            self._f.close()
            self._f = None
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)

    def _header(self, n: int) -> bytes:
        d = {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": (n, *self.shape)}
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, d)
        return buf.getvalue()

    def _open(self) -> None:
        name = f"shard-{len(self.shards):05d}.npy"
        self._tmp = self.out / f".{name}.tmp-{os.getpid()}"
        self.out.mkdir(parents=True, exist_ok=True)
        self._f = open(self._tmp, "wb")  # noqa: SIM115 -- spans many add() calls; closed in _close/close
        self._hw = _HashingWriter(self._f)
        n = self.shard_size
        if self.expected is not None:
            n = max(1, min(n, self.expected - self.count))
        self._header_n = n
        self._hw.write(self._header(n))
        self._n = 0

    def add(self, chw: np.ndarray) -> None:
        if chw.shape != self.shape or chw.dtype != np.uint8:
            raise ValueError(f"expected uint8 {self.shape}, got {chw.dtype} {chw.shape}")
        if self._f is None:
            self._open()
        assert self._hw is not None
        self._hw.write(memoryview(np.ascontiguousarray(chw)).cast("B"))
        self._n += 1
        self.count += 1
        if self._n == self.shard_size:
            self._close()

    def add_batch(self, nchw: np.ndarray) -> None:
        for chw in nchw:
            self.add(chw)

    def skip(self) -> None:
        """An image that ``expected`` counted will not come (it was bad and is being skipped)."""
        if self.expected is not None:
            self.expected -= 1

    def _close(self) -> None:
        assert self._f is not None and self._hw is not None and self._tmp is not None
        f, digest = self._f, self._hw.h.hexdigest()
        if self._n != self._header_n:  # fewer images than the header promised: fix it, hash again
            header = self._header(self._n)
            if len(header) != len(self._header(self._header_n)):
                raise AssertionError("npy header length changed")  # cannot happen: headers pad to 64 bytes
            f.seek(0)
            f.write(header)
            f.truncate(len(header) + self._n * int(np.prod(self.shape)))
            f.flush()
            digest = sha256_file(self._tmp)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._f = None
        name = self._tmp.name.split(".tmp-")[0].lstrip(".")
        os.replace(self._tmp, self.out / name)
        self.shards.append({"file": name, "count": self._n, "sha256": digest})

    def finish(self) -> list[dict[str, Any]]:
        if self._f is not None and self._n > 0:
            self._close()
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
        positive_int(batch_size, "batch_size")
        for start in range(0, len(self), batch_size):
            yield self.read(start, start + batch_size)

    def verify(self) -> None:
        """Re-hash every shard and compare with the manifest (reads all the data)."""
        for rec in self.manifest["shards"]:
            digest = sha256_file(self.dir / rec["file"])
            if digest != rec["sha256"]:
                raise ValueError(f"{self.dir}: shard {rec['file']} sha256 {digest} != manifest {rec['sha256']}")
