"""`omzoo sweep` (what `make bench BS=32` runs): benchmark batch sizes through the pipeline, then print the table.

A batch size is part of the pipeline's definition (its compile and bench stages are generated from
params.yaml's `batch_sizes`), so a size that is not there yet is added to params.yaml, and the terminal says so:
the measurement is then recorded like any other (metrics/bench/<model>-<bs>.json and dvc.lock), `dvc metrics
diff` sees it, and a later `dvc repro` keeps it without measuring it again. The bench stages run through
`dvc repro --no-run-cache`, which builds whatever they need first (weights, export, simplify, compile). Those
stages read params.yaml itself, so sweep takes no -S: a setting for them is an edit of params.yaml (or a
`dvc exp run -S`). params.yaml is read once; the edit is checked before it is written.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from omzoo.core import paths
from omzoo.core.io import write_bytes_atomic
from omzoo.core.params import Params, ParamsError, batch_size_list, load_params, parse_params
from omzoo.results.bench_table import bench_table, matching_models

HELP = "benchmark batch sizes (added to params.yaml when new) for the matching models, then print the table"
#: why this verb takes no -S (the CLI refuses one with this reason)
NO_OVERRIDES = ("sweep runs its stages through `dvc repro`, which reads params.yaml itself; edit params.yaml (or use "
                "`dvc exp run -S`), and --bs/--model for the sizes and models")

_FLOW = re.compile(r"^(batch_sizes:[ \t]*)\[([^\]\n]*)\]", re.MULTILINE)  # batch_sizes: [1, 8]
_BLOCK = re.compile(r"^batch_sizes:[ \t]*\n((?:([ \t]*)-[ \t]*\d+[ \t]*\n)+)", re.MULTILINE)  # - 1 lines


def add_batch_sizes(params: Params, sizes: list[int]) -> tuple[Params, list[int]]:
    """Add the sizes the params file lacks to its `batch_sizes` list, flow (`[1, 8]`) or block (`- 1` lines), with
    comments and layout kept; return the params as written and the sizes added."""
    current, path = params.batch_sizes, params.path
    added = [b for b in sizes if b not in current]
    if not added:
        return params, []
    text, new = params.text, sorted(current + added)
    if found := _FLOW.search(text):
        text = text[: found.start()] + f"{found.group(1)}[{', '.join(map(str, new))}]" + text[found.end():]
    elif found := _BLOCK.search(text):
        text = text[: found.start(1)] + "".join(f"{found.group(2)}- {b}\n" for b in new) + text[found.end(1):]
    else:
        raise ParamsError(f"{path}: cannot find its `batch_sizes` list to add {added} to; add them by hand")
    edited = parse_params(text, path)  # the edit must leave a valid file
    write_bytes_atomic(path, text.encode())
    return edited, added


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bs", default="", help="batch size or list (1,8,32); empty = every size in params.yaml")
    p.add_argument("--model", default="*", help="model id glob (default: every model in params.yaml)")
    p.add_argument("--force", action="store_true", help="measure again even where the stage is up to date")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params or paths.PARAMS)
    path = params.path
    sizes = batch_size_list(args.bs, "BS") if args.bs.strip() else params.batch_sizes
    models = matching_models(params, args.model)  # before anything runs: a typo costs nothing
    params, added = add_batch_sizes(params, sizes)
    if added:
        print(f"omzoo sweep: added batch size(s) {added} to {path} batch_sizes (its compile and bench stages now "
              "exist); commit params.yaml, dvc.lock and metrics/ with the results", file=sys.stderr)
    targets = [f"bench@{paths.key(m, bs, p)}" for m in models for bs in sizes for p in params.precisions]
    force = ["--force", "--single-item"] if args.force else []
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", "--no-run-cache", *force, *targets], check=False)
    if done.returncode:
        print(f"omzoo sweep: dvc repro failed (exit {done.returncode}); the table shows what was measured before",
              file=sys.stderr)
    print(bench_table(params, path.parent, sizes, args.model))
    return done.returncode
