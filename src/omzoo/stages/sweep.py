"""`omzoo sweep` (what `make bench BS=32` runs): benchmark batch sizes through the pipeline, then print the table.

A batch size is part of the pipeline's definition (its compile and bench stages are generated from
params.yaml's `batch_sizes`), so a size that is not there yet is added to params.yaml, and the terminal says so:
the measurement is then recorded like any other (metrics/bench/<model>-<bs>.json and dvc.lock), `dvc metrics
diff` sees it, and a later `dvc repro` keeps it without measuring it again. The bench stages run through
`dvc repro --no-run-cache`, which builds whatever they need first (weights, export, simplify, compile).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from omzoo.core import paths
from omzoo.core.params import PARAMS_HELP, ParamsError, load_params
from omzoo.results.summary import bench_table, matching_models

HELP = "benchmark batch sizes (added to params.yaml when new) for the matching models, then print the table"

_FLOW = re.compile(r"^(batch_sizes:[ \t]*)\[([^\]\n]*)\]", re.MULTILINE)  # batch_sizes: [1, 8]
_BLOCK = re.compile(r"^batch_sizes:[ \t]*\n((?:([ \t]*)-[ \t]*\d+[ \t]*\n)+)", re.MULTILINE)  # - 1 lines


def parse_sizes(text: str) -> list[int]:
    """`32` or `1,8,32` (spaces allowed); anything else is a usage error naming what was given."""
    parts = [t.strip() for t in text.split(",")]
    if not text.strip() or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"BS must be a positive integer or a list like 1,8,32; got {text!r}")
    return list(dict.fromkeys(int(p) for p in parts))


def add_batch_sizes(path: Path, sizes: list[int]) -> list[int]:
    """Add the sizes params.yaml lacks to its `batch_sizes` list, flow (`[1, 8]`) or block (`- 1` lines), with
    comments and layout kept; return the sizes added."""
    current = load_params(path).batch_sizes
    added = [b for b in sizes if b not in current]
    if not added:
        return []
    text, new = path.read_text(), sorted(current + added)
    if found := _FLOW.search(text):
        text = text[: found.start()] + f"{found.group(1)}[{', '.join(map(str, new))}]" + text[found.end():]
    elif found := _BLOCK.search(text):
        text = text[: found.start(1)] + "".join(f"{found.group(2)}- {b}\n" for b in new) + text[found.end(1):]
    else:
        raise ParamsError(f"{path}: cannot find its `batch_sizes` list to add {added} to; add them by hand")
    path.write_text(text)
    load_params(path)  # the edit must leave a valid file
    return added


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bs", default="", help="batch size or list (1,8,32); empty = every size in params.yaml")
    p.add_argument("--model", default="*", help="model id glob (default: every model in params.yaml)")
    p.add_argument("--force", action="store_true", help="measure again even where the stage is up to date")
    p.add_argument("--params", type=Path, help=PARAMS_HELP)


def run(args: argparse.Namespace) -> int:
    path = args.params or paths.PARAMS
    params = load_params(path)
    sizes = parse_sizes(args.bs) if args.bs.strip() else params.batch_sizes
    models = matching_models(params, args.model)  # before anything runs: a typo costs nothing
    added = add_batch_sizes(path, sizes)
    if added:
        print(f"omzoo sweep: added batch size(s) {added} to {path} batch_sizes (its compile and bench stages now "
              "exist); commit params.yaml, dvc.lock and metrics/ with the results", file=sys.stderr)
    targets = [f"bench@{paths.key(m, bs)}" for m in models for bs in sizes]
    force = ["--force", "--single-item"] if args.force else []
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", "--no-run-cache", *force, *targets], check=False)
    if done.returncode:
        print(f"omzoo sweep: dvc repro failed (exit {done.returncode}); the table shows what was measured before",
              file=sys.stderr)
    print(bench_table(load_params(path), path.parent, sizes, args.model))
    return done.returncode
