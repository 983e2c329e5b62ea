"""`omzoo models`: the registry as a table (input, checkpoint container, pixels, size, published accuracy)."""

from __future__ import annotations

import argparse

from omzoo.core import zoo

HELP = "list the registered models with their input, checkpoint container and published figures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="github", help="tabulate table format")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    rows = [(s.id, s.title, "x".join(map(str, s.input_size)), s.num_classes, s.checkpoint_file, s.container,
             s.recipe.pixels, f"{s.param_count:,}", f"{s.flops / 1e9:.2f}",
             " ".join(f"{p}:{k}={v}" for p, acc in s.published_accuracy.items() for k, v in acc.items()))
            for s in zoo.REGISTRY.values()]
    print(tabulate(rows, ["id", "model", "input", "classes", "checkpoint", "container", "pixels", "params",
                          "GFLOPs", "published accuracy"], tablefmt=args.format))
    return 0
