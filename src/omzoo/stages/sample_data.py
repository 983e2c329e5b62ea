"""The `sample-data` stage: a small seeded ImageNet-val-style folder and a CIFAR-10 batch, so the pipeline runs
on a fresh clone with no dataset (nothing is ever downloaded)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omzoo.core import paths
from omzoo.data.sample import write_sample

HELP = "write deterministic sample data (ImageNet-style JPEGs + labels, a CIFAR-10 python batch)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=paths.SAMPLE,
                        help=f"output folder (default {paths.SAMPLE}; only a new, empty or earlier sample folder)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    write_sample(args.out, seed=args.seed)
    print(f"wrote sample data to {args.out}", file=sys.stderr)
    return 0
