"""Decode, resize and centre-crop a dataset once into uint8 shards (the `preprocess` verb and `predict` use it).

The expensive part of evaluation input (JPEG decode + resize) runs once per pixel recipe, in parallel
worker processes, and its result is stored as uint8 -- 1/4 of the guides' float32 ``.bin`` files, in a
few dozen shard files instead of one file per image. Normalisation happens at load time.

Bad input is never skipped silently. By default every problem (undecodable, truncated or empty file,
image without label, label without image, label out of range, duplicate or malformed label line) is
collected over the whole dataset and reported in one :class:`DataError`; with ``skip_bad`` they are left
out and listed in ``manifest["skipped"]``, and ``count == dataset_size - n_skipped``.

Output is atomic: everything is written into ``<out>.tmp-<pid>`` (each shard itself via temp name +
rename, ``manifest.json`` last) and that directory replaces ``out`` only on success, so a killed run
never leaves a complete-looking manifest and never damages a previous complete output.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from omzoo.core.io import atomic_dir
from omzoo.core.provenance import usable_cores
from omzoo.core.recipe import Recipe
from omzoo.data import DataError
from omzoo.data.decode import load_rgb, resize_crop
from omzoo.data.readers import FLAT_EXTENSIONS, IMG_EXTENSIONS, Dataset, Item, read_dataset
from omzoo.data.shards import DEFAULT_SHARD_SIZE, FORMAT, ShardWriter, write_manifest

__all__ = ["DataError", "preprocess"]

SOURCE_HASH_FIELDS = "sha256 of sorted (relative path, byte size) of every source file + sha256 of the labels file"


# --- worker side ---------------------------------------------------------------------------------------

_RECIPE: Recipe | None = None


def _init_worker(recipe: Recipe) -> None:
    """A worker ignores Ctrl-C: the terminal sends it to the whole process group, and the parent alone stops the
    pool and says so in one line (no traceback per worker). Until then it has the flag-only handler it was forked
    with (_pool)."""
    global _RECIPE
    _RECIPE = recipe
    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pixels_or_reason(path: Path) -> np.ndarray | str:
    """uint8 CHW pixels of one file, or the reason it failed (a string: exceptions do not cross processes well)."""
    assert _RECIPE is not None
    try:
        return resize_crop(load_rgb(path), _RECIPE)
    except DataError as exc:
        msg = str(exc)
        prefix = f"{path}: "
        return msg[len(prefix) :] if msg.startswith(prefix) else msg
    except Exception as exc:  # any decoder failure is a per-file problem, reported with the others
        return f"{type(exc).__name__}: {exc}"


def _in_process(paths: list[Path], recipe: Recipe) -> Iterator[np.ndarray | str]:
    _init_worker(recipe)
    for p in paths:
        yield _pixels_or_reason(p)


@contextlib.contextmanager
def _image_results(items: list[Item], recipe: Recipe, workers: int) -> Iterator[Iterator[np.ndarray | str]]:
    """Yields an iterator of results in item order; ``workers <= 1`` decodes in this process.

    A context manager so the pool exists before the progress bar's monitor thread (forking a
    multi-threaded process is deadlock-prone) and is torn down on any error.
    """
    paths = [it.path for it in items]
    if workers <= 1 or len(items) <= 1:
        yield _in_process(paths, recipe)  # type: ignore[arg-type]
        return
    workers = min(workers, len(items))
    # Chunks amortise IPC without starving a worker at the end: ~16 chunks per worker, at most 32 items.
    chunksize = max(1, min(32, len(items) // (workers * 16)))
    with _pool(workers, recipe) as pool:
        yield pool.imap(_pixels_or_reason, paths, chunksize=chunksize)  # imap keeps the input order


@contextlib.contextmanager
def _pool(workers: int, recipe: Recipe) -> Iterator[Any]:
    """A worker pool whose start no Ctrl-C can disturb. While the workers are forked, SIGINT only sets a flag: the
    Python handler would otherwise raise in fork's after-fork hooks, where the KeyboardInterrupt is printed and
    dropped (the run goes on and exits 0), or in a worker before its initializer ignores it (a worker's traceback).
    A Ctrl-C caught so is raised once the pool exists, inside the `with`, so the pool is torn down."""
    caught: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if callable(previous):  # not when started with Ctrl-C ignored: that choice is kept
        signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        pool = multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(recipe,))
    finally:
        signal.signal(signal.SIGINT, previous)
    with pool:
        if caught and callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
        yield pool


def _check_compatible(ds: Dataset, recipe: Recipe) -> None:
    if ds.kind == "cifar10" and (recipe.resize is not None or recipe.size != 32):
        raise DataError(
            f"{ds.root}: CIFAR-10 rows are 32x32 as stored; recipe {recipe.pixels!r} resizes to "
            f"{recipe.resize} and crops {recipe.size} -- use the cifar32 pixels"
        )


#: How the pipeline skips bad inputs (the preprocess verb reads it from params.yaml); predict has a flag instead.
SKIP_HINT = "preprocess.skip_bad: true in params.yaml skips them and lists them in the manifest"


def _format_problems(problems: list[tuple[str, str]], data: Path, skip_hint: str) -> str:
    lines = [f"{len(problems)} bad input(s) in {data} (nothing written; {skip_hint}):"]
    lines += [f"  {name}: {reason}" for name, reason in problems]
    return "\n".join(lines)


def preprocess(
    recipe: Recipe,
    data: Path,
    labels: Path | None,
    out: Path,
    workers: int | None = None,
    skip_bad: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    skip_hint: str = SKIP_HINT,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Preprocess ``data`` (+ ``labels``) with ``recipe``'s pixel half into shards under ``out``; return the manifest.

    ``out`` is replaced on success only, and only when it is empty or an earlier shard set (it holds a manifest).
    ``workers``: processes decoding in parallel; None or 0 = one per available CPU, 1 = in this process.
    Raises :class:`DataError` listing every bad input unless ``skip_bad``; ``skip_hint`` tells the caller's user how
    to skip them. ``num_classes``: the classes of the model(s) reading these pixels; a label at or above it is bad.
    """
    data = Path(data)
    labels = Path(labels) if labels not in (None, "") else None
    out = Path(out)
    if workers is None or workers <= 0:
        workers = usable_cores()

    ds = read_dataset(data, labels, num_classes)
    _check_compatible(ds, recipe)
    if ds.size == 0:
        extensions = IMG_EXTENSIONS if ds.kind == "imagefolder" else FLAT_EXTENSIONS
        raise DataError(f"{data}: no images found (extensions: {', '.join(extensions)})")
    problems: list[tuple[str, str]] = list(ds.problems)

    with (
        atomic_dir(out, "shards") as tmp,
        ShardWriter(tmp, recipe.shape, shard_size, expected=len(ds.items)) as writer,
    ):
        names: list[str] = []
        item_labels: list[int | None] = []
        n_workers = 1 if ds.kind == "cifar10" else workers  # CIFAR rows need no decoding
        with (
            _image_results(ds.items, recipe, n_workers) as decoded,  # the pool starts before tqdm's thread
            tqdm(total=len(ds.items), desc=f"preprocess {recipe.pixels}", unit="img", file=sys.stderr,
                 disable=not progress, dynamic_ncols=True) as bar,
        ):  # fmt: skip
            if ds.kind == "cifar10":
                for start in range(0, len(ds.items), 1024):
                    chunk = ds.items[start : start + 1024]
                    if not problems or skip_bad:
                        writer.add_batch(ds.pixels(np.array([it.row for it in chunk], dtype=np.int64)))
                        names += [it.name for it in chunk]
                        item_labels += [it.label for it in chunk]
                    bar.update(len(chunk))
            else:
                for item, result in zip(ds.items, decoded, strict=True):
                    bar.update(1)
                    if isinstance(result, str):
                        problems.append((item.name, result))
                        writer.skip()
                    elif not problems or skip_bad:  # after a fatal problem: keep decoding, to report all
                        writer.add(result)
                        names.append(item.name)
                        item_labels.append(item.label)
        problems.sort()
        if problems and not skip_bad:
            raise DataError(_format_problems(problems, data, skip_hint))
        if writer.count == 0:
            raise DataError(_format_problems(problems, data, skip_hint).replace("(nothing written;",
                                                                                 "(every input is bad;"))
        shards = writer.finish()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "pixels": recipe.pixels,
            "recipe": {"resize": recipe.resize, "size": recipe.size, "interpolation": recipe.interpolation},
            "shape": list(recipe.shape),
            "count": writer.count,
            "dataset_size": ds.size,
            "n_skipped": len(problems),
            "kind": ds.kind,
            "num_classes": ds.num_classes,
            "names": names,
            "labels": item_labels if ds.labelled else None,
            "skipped": [{"name": n, "reason": r} for n, r in problems],
            "shards": shards,
            "source": str(data),
            "labels_file": None if labels is None else str(labels),
            "source_hash": ds.source_hash(),
            "source_hash_fields": SOURCE_HASH_FIELDS,
        }
        assert manifest["count"] == manifest["dataset_size"] - manifest["n_skipped"]
        write_manifest(tmp, manifest)  # last: its presence marks the directory complete
    return manifest
