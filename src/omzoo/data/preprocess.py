"""``omzoo preprocess``: decode, resize and centre-crop a dataset once into uint8 shards.

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

import argparse
import contextlib
import multiprocessing
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from omzoo.data import DataError
from omzoo.data.profiles import Profile, get_profile, load_rgb, to_pixels
from omzoo.data.readers import IMG_EXTENSIONS, Dataset, Item, read_dataset
from omzoo.data.shards import DEFAULT_SHARD_SIZE, FORMAT, ShardWriter, write_manifest
from omzoo.io import atomic_dir

__all__ = ["HELP", "DataError", "add_arguments", "available_cpus", "preprocess", "run"]

HELP = "decode, resize and centre-crop a dataset into uint8 NCHW shards + manifest.json"

SOURCE_HASH_FIELDS = "sha256 of sorted (relative path, byte size) of every source file + sha256 of the labels file"


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cpusets, unlike ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- worker side ---------------------------------------------------------------------------------------

_PROFILE: Profile | None = None


def _init_worker(profile: Profile) -> None:
    global _PROFILE
    _PROFILE = profile


def _pixels_or_reason(path: Path) -> np.ndarray | str:
    """uint8 CHW pixels of one file, or the reason it failed (a string: exceptions do not cross processes well)."""
    assert _PROFILE is not None
    try:
        return to_pixels(load_rgb(path), _PROFILE)
    except DataError as exc:
        msg = str(exc)
        prefix = f"{path}: "
        return msg[len(prefix) :] if msg.startswith(prefix) else msg
    except Exception as exc:  # any decoder failure is a per-file problem, reported with the others
        return f"{type(exc).__name__}: {exc}"


def _in_process(paths: list[Path], profile: Profile) -> Iterator[np.ndarray | str]:
    _init_worker(profile)
    for p in paths:
        yield _pixels_or_reason(p)


@contextlib.contextmanager
def _image_results(items: list[Item], profile: Profile, workers: int) -> Iterator[Iterator[np.ndarray | str]]:
    """Yields an iterator of results in item order; ``workers <= 1`` decodes in this process.

    A context manager so the pool exists before the progress bar's monitor thread (forking a
    multi-threaded process is deadlock-prone) and is torn down on any error.
    """
    paths = [it.path for it in items]
    if workers <= 1 or len(items) <= 1:
        yield _in_process(paths, profile)  # type: ignore[arg-type]
        return
    workers = min(workers, len(items))
    # Chunks amortise IPC without starving a worker at the end: ~16 chunks per worker, at most 32 items.
    chunksize = max(1, min(32, len(items) // (workers * 16)))
    with multiprocessing.get_context().Pool(workers, initializer=_init_worker, initargs=(profile,)) as pool:
        yield pool.imap(_pixels_or_reason, paths, chunksize=chunksize)  # imap keeps the input order


def _check_compatible(ds: Dataset, profile: Profile) -> None:
    if ds.kind == "cifar10" and (profile.resize is not None or profile.size != 32):
        raise DataError(
            f"{ds.root}: CIFAR-10 rows are 32x32 as stored; profile {profile.name!r} resizes to "
            f"{profile.resize} and crops {profile.size} -- use the cifar profile"
        )


def _format_problems(problems: list[tuple[str, str]], data: Path) -> str:
    lines = [f"{len(problems)} bad input(s) in {data} (nothing written; --skip-bad skips them and lists them in the "
             f"manifest):"]  # fmt: skip
    lines += [f"  {name}: {reason}" for name, reason in problems]
    return "\n".join(lines)


def preprocess(
    profile: str,
    data: Path,
    labels: Path | None,
    out: Path,
    workers: int | None = None,
    skip_bad: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
) -> dict[str, Any]:
    """Preprocess ``data`` (+ ``labels``) with ``profile`` into shards under ``out``; return the manifest.

    ``profile`` is a profile name, a pixels name or a model id (only its pixel recipe is used here).
    ``workers``: processes decoding in parallel; None or 0 = one per available CPU, 1 = in this process.
    Raises :class:`DataError` listing every bad input unless ``skip_bad``.
    """
    prof = get_profile(profile)
    data = Path(data)
    labels = Path(labels) if labels not in (None, "") else None
    out = Path(out)
    if workers is None or workers <= 0:
        workers = available_cpus()

    ds = read_dataset(data, labels)
    _check_compatible(ds, prof)
    if ds.size == 0:
        raise DataError(f"{data}: no images found (extensions: {', '.join(IMG_EXTENSIONS)})")
    problems: list[tuple[str, str]] = list(ds.problems)

    with atomic_dir(out) as tmp, ShardWriter(tmp, prof.shape, shard_size, expected=len(ds.items)) as writer:
        names: list[str] = []
        item_labels: list[int | None] = []
        n_workers = 1 if ds.kind == "cifar10" else workers  # CIFAR rows need no decoding
        with (
            _image_results(ds.items, prof, n_workers) as decoded,  # the pool starts before tqdm's thread
            tqdm(total=len(ds.items), desc=f"preprocess {prof.pixels}", unit="img", file=sys.stderr,
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
            raise DataError(_format_problems(problems, data))
        if writer.count == 0:
            raise DataError(_format_problems(problems, data).replace("(nothing written;", "(every input is bad;"))
        shards = writer.finish()
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "pixels": prof.pixels,
            "profile": prof.name,
            "recipe": {"resize": prof.resize, "size": prof.size, "interpolation": prof.interpolation},
            "shape": list(prof.shape),
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


# --- CLI -----------------------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True,
                        help="profile (imagenet, tresnet, smlp, cifar), pixels name (bilinear224, bicubic224, "
                             "cifar32) or model id")  # fmt: skip
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="image folder (flat or ImageFolder), CIFAR-10 python folder, or one image",
    )
    parser.add_argument("--labels", default=None, help='val_label.txt for a flat folder; "" = none')
    parser.add_argument("--out", type=Path, required=True, help="output shard directory (replaced on success)")
    parser.add_argument("--workers", type=int, default=None, help="decoder processes; 0 = one per core (default)")
    parser.add_argument(
        "--skip-bad",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="skip bad inputs and list them in the manifest instead of failing",
    )
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="images per shard file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        m = preprocess(args.profile, args.data, args.labels or None, args.out, workers=args.workers,
                       skip_bad=args.skip_bad, shard_size=args.shard_size, progress=not args.quiet)  # fmt: skip
    except (DataError, KeyError) as exc:
        print(f"omzoo preprocess: error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    skipped = f", {m['n_skipped']} skipped" if m["n_skipped"] else ""
    print(f"{m['count']} images{skipped} -> {args.out} ({len(m['shards'])} shards, {m['pixels']})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omzoo.data.preprocess", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
