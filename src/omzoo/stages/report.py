"""The `report` stage: reports/summary.md, throughput.csv, throughput.png and frontier.png from the metrics files,
written together (one atomic commit: never a new summary beside an old plot).

`--bench-table BS[,BS...]` prints the benchmark table of this workspace instead: the one `omzoo sweep` (`make bench`)
prints after its run, here without running anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from omzoo.core import paths
from omzoo.core.io import atomic_files, claim_folder
from omzoo.core.params import batch_size_list, load_params
from omzoo.results import frontier
from omzoo.results.bench_table import bench_table
from omzoo.results.collect import collect, read_json
from omzoo.results.fingerprints import one_fingerprint, result_infos
from omzoo.results.summary import summary_markdown
from omzoo.results.throughput import throughput_rows, write_csv, write_png

HELP = ("write reports/summary.md, throughput.csv, throughput.png and frontier.png from the metrics files (or print a "
        "bench table)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, default=Path("."), help="repository root holding metrics/")
    p.add_argument("--out", type=Path, default=paths.REPORTS)
    p.add_argument("--bench-table", type=batch_size_list, metavar="BS[,BS...]",
                   help="print this workspace's bench table for these batch sizes; write nothing")
    p.add_argument("--model", default="*", help="model glob for --bench-table (default: all in params.yaml)")


def inputs(args: argparse.Namespace) -> dict[str, Path]:
    """What it reads that no argument names: the metrics folder under --root (an --out there would be read back)."""
    return {"metrics folder": args.root / paths.METRICS}


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    if args.bench_table:
        print(bench_table(params, args.root, args.bench_table, args.model))
        return 0
    one_fingerprint(result_infos(params, lambda p: read_json(args.root / p)), str(args.root / paths.METRICS / "info"))
    data = collect(args.root, params)
    rows = throughput_rows(data)
    out = claim_folder(args.out, "reports")  # new, empty or omzoo's: a user's summary.md is never overwritten
    files = [out / "summary.md", out / "throughput.csv", out / "throughput.png", out / "frontier.png"]
    with atomic_files(files) as (md, csv, png, frontier_png):
        md.write_bytes(summary_markdown(data, params).encode())
        write_csv(rows, csv)
        write_png(rows, png)
        frontier.write_png(frontier.frontier_points(data), frontier_png)
    print(f"report: {len(data)} models, {len(rows)} throughput rows -> {args.out}/summary.md")
    return 0
