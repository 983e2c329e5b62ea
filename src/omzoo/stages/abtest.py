"""`omzoo abtest BASE HEAD`: what a toolkit changed, measured on this host in paired, interleaved rounds.

Use it when both toolkits install side by side on one host: it is the verdict to trust (two separate runs drift
further apart than most toolkit changes). `omzoo compare` stays the tool for history and for results from other
hosts. -S applies to HEAD only, so one branch can test a setting against itself. How it measures:
omzoo.results.abtest and omzoo.timing.pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omzoo.backends.base import backend_names
from omzoo.core.params import batch_size_list
from omzoo.results.abtest import abtest
from omzoo.results.gate import FAIL_ON

HELP = "A/B test two revisions on this host: paired interleaved rounds, verdicts with intervals, accuracy, a gate"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", help="base revision (branch, tag, commit): the reference, whose rules apply")
    p.add_argument("head", nargs="?", default="workspace", help="revision to test (default: the workspace)")
    p.add_argument("--model", default="*", help="model ids or globs, comma-separated (default: all both declare)")
    p.add_argument("--bs", type=batch_size_list, help="batch sizes, e.g. 1,8 (default: those both compile)")
    p.add_argument("--out", type=Path, default=Path("reports/abtest"), help="result folder (default reports/abtest)")
    p.add_argument("--fail-on", choices=FAIL_ON,
                   help="regression: exit 1 when a speed verdict is `regressed`, top-1 fell by more than "
                        "compare.max_accuracy_drop or evidence is missing; inconclusive: also on anything that "
                        "could not be judged (rules: BASE's params.yaml)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


__all__ = ["backend_names"]  # -S may set any backend's section on HEAD: the CLI checks -S keys against these


def run(args: argparse.Namespace) -> int:
    if args.base == "workspace" and args.head == "workspace" and not args.set_params:
        raise ValueError("BASE and HEAD are both the workspace: name a revision, or test a setting with -S")
    result = abtest(args.base, args.head, tuple(args.set_params), args.model, args.bs, args.out, args.fail_on,
                    progress=not args.quiet)
    print(result.text, end="")
    print(f"omzoo abtest: results in {args.out}", file=sys.stderr)
    if args.fail_on and result.failed:
        print(f"omzoo abtest: gate failed: {result.failed}", file=sys.stderr)
        return 1
    return 0
