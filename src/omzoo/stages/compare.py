"""`omzoo compare`: what did this toolkit change? Verdicts with confidence, per-image accuracy changes, a CI gate.

- Speed: HEAD/BASE of the kept benchmark rounds' medians with a distribution-free interval, per (model, bs) and
  per-round metric (omzoo.results.verdicts).
- Accuracy: exact top-k and the images whose top-1 changed (omzoo.results.accuracy); different data is refused.
- Gate (omzoo.results.gate, fails closed): with `--fail-on regression` the exit status is 1 when a verdict is
  `regressed`, top-1 fell by more than `compare.max_accuracy_drop` points, any evidence is missing, corrupt,
  field-less or contended, or nothing could be judged; `--fail-on inconclusive` also fails on every number that
  could not be judged. The rules are BASE's params.yaml `compare:` section; HEAD may only tighten them.

The comparison itself is omzoo.results.comparison; `--plots-only` renders this workspace's throughput plot offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omzoo.core import paths
from omzoo.results.comparison import compare
from omzoo.results.gate import FAIL_ON
from omzoo.results.plots import render_plots

HELP = "compare two revisions: speed verdicts over benchmark rounds, per-image accuracy changes, params, plot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", nargs="?", help="base revision (branch, tag, commit)")
    p.add_argument("head", nargs="?", help="revision to compare against BASE (default: the workspace)")
    p.add_argument("--out", type=Path, help="output dir (default reports/compare; reports/plots for --plots-only)")
    p.add_argument("--fail-on", choices=FAIL_ON,
                   help="regression: exit 1 when a speed verdict is `regressed`, top-1 fell by more than "
                        "compare.max_accuracy_drop, evidence is missing/corrupt/contended, or nothing could be judged; "
                        "inconclusive: also on anything that could not be judged (rules: BASE's params.yaml)")
    p.add_argument("--no-plots", action="store_true", help="no throughput plot")
    p.add_argument("--plots-only", action="store_true", help="render this workspace's throughput plot offline")


def complete(args: argparse.Namespace) -> None:
    """--out's default, filled in before the CLI checks the outputs."""
    args.out = args.out or Path("reports/plots" if args.plots_only else "reports/compare")


def inputs(args: argparse.Namespace) -> dict[str, Path]:
    """What the workspace side reads (--plots-only, or no HEAD): its metrics, its plot data and its params file."""
    if not args.plots_only and args.head not in (None, "workspace"):
        return {}  # both sides are read from git
    return {"metrics folder": paths.METRICS, "plot data": paths.REPORTS / "throughput.csv", "params file": paths.PARAMS}


def run(args: argparse.Namespace) -> int:
    if args.plots_only:
        page = render_plots(None, args.out)
        print(f"throughput plot (offline): {page}")
        return 0
    if not args.base:
        raise ValueError("usage: omzoo compare BASE [HEAD] [--out DIR] [--fail-on regression] (or --plots-only)")
    result = compare(args.base, args.head or "workspace", args.out,
                     plots=not args.no_plots, fail_on=args.fail_on)
    print(result.text, end="")
    for w in result.warnings:
        print(f"omzoo compare: warning: {w}", file=sys.stderr)
    if args.fail_on and result.failed:
        print(f"omzoo compare: gate failed: {result.failed}", file=sys.stderr)
        return 1
    return 0
