"""The `preprocess` stage: one uint8 shard set per pixel recipe (`datasets:` in params.yaml).

The output comes from the command line, the data and labels from params.yaml's `datasets.<pixels>` (or --data and
--labels by hand; dvc.yaml never pastes a path into a shell command); `skip_bad` and `shard_size` come from its
`preprocess:` section (by hand: `-S preprocess.skip_bad=true`). `--workers` and `--quiet` change only speed and
output noise, never the shards, so they stay flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omzoo.core import zoo
from omzoo.core.params import PreprocessConfig, load_params
from omzoo.data.preprocess import preprocess

HELP = "decode, resize and centre-crop a dataset into uint8 NCHW shards + manifest.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pixels", required=True, help="pixel recipe, a key of `datasets:` (e.g. bilinear224)")
    parser.add_argument("--data", type=Path,
                        help="image folder (flat or ImageFolder), CIFAR-10 python folder, or one image "
                             "(default: params.yaml datasets.<pixels>.data, and its labels)")
    parser.add_argument("--labels", type=Path,
                        help="val_label.txt for a flat folder; omitted, or the --data folder itself, when the labels "
                             "live in the data (CIFAR batches, class sub-folders)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output shard directory (replaced on success; never an input or a foreign folder)")
    parser.add_argument("--workers", type=int, default=None, help="decoder processes (default: params, 0 = per core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def complete(args: argparse.Namespace) -> None:
    """--data and --labels from params.yaml's `datasets.<pixels>` where --data is not given; labels that name the
    data folder itself (CIFAR, class sub-folders) are no separate file."""
    if args.data is None:
        params = load_params(args.params)
        entry = params.section("datasets").get(args.pixels)
        if not entry:
            raise ValueError(f"{params.where}: no datasets.{args.pixels} to read; add it or give --data")
        args.data, args.labels = Path(entry["data"]), Path(entry["labels"]) if entry.get("labels") else None
    if args.labels in (Path(""), args.data):
        args.labels = None


def run(args: argparse.Namespace) -> int:
    cfg = load_params(args.params).typed(PreprocessConfig, "preprocess")
    labels = args.labels
    m = preprocess(zoo.pixel_recipe(args.pixels), args.data, labels, args.out,
                   workers=cfg.workers if args.workers is None else args.workers, skip_bad=cfg.skip_bad,
                   shard_size=cfg.shard_size, progress=not args.quiet, num_classes=zoo.pixel_classes(args.pixels))
    skipped = f", {m['n_skipped']} skipped" if m["n_skipped"] else ""
    print(f"{m['count']} images{skipped} -> {args.out} ({len(m['shards'])} shards, {m['pixels']})", file=sys.stderr)
    return 0
