"""`omzoo compare`: what changed between two toolkit branches (metrics, params, throughput plot).

Everything is read through `dvc ... --json` from git (omzoo.revisions): metrics, params and the plot's CSV are
committed with `cache: false`, so a comparison runs on any clone without `dvc pull` (DVC.md §13). DVC exits 0
when it fails to load a revision's metrics and does not sort its rows (DVC.md §5), so the JSON *content* is
checked and sorted here. Which metrics are compared, and which direction is better, is omzoo.metrics.SCHEMA's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omzoo import metrics, paths
from omzoo.io import write_bytes_atomic, write_json_atomic
from omzoo.metrics import fmt, number
from omzoo.plots import render_plots
from omzoo.revisions import DvcError, check_revision, dvc_json

HELP = "compare metrics, params and the throughput plot between two revisions (or render this workspace's plot)"

ACCURACY_KEYS = tuple(m.name for m in metrics.of("eval") if m.compared)
THROUGHPUT_KEYS = tuple(m.name for m in metrics.of("bench") if m.compared)



@dataclass(frozen=True)
class Row:
    """One compared number; None where a revision lacks it (not measured, failed, or not a number)."""

    model: str
    kind: str  # "accuracy" or "throughput"
    bs: int | None
    metric: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def pct(self) -> float | None:
        d = self.delta
        return None if d is None or not self.old else 100.0 * d / self.old


def parse_metrics_diff(diff: dict[str, Any]) -> tuple[list[Row], set[str]]:
    """Sorted rows from `dvc metrics diff --json --all` (keys flattened with dots), and the models
    either side marks as random-weight runs. Paths are metrics/eval/<model>.json and
    metrics/bench/<model>-<bs>.json; anything else under the metrics dirs is ignored."""
    rows: list[Row] = []
    random: set[str] = set()
    for path, values in diff.items():
        kind = paths.metrics_kind(path)
        if kind == "eval":
            model = Path(path).stem
            rows += [Row(model, "accuracy", None, k, number(values[k].get("old")), number(values[k].get("new")))
                     for k in ACCURACY_KEYS if k in values]
            rw = values.get("random_weights", {})
            if rw.get("old") or rw.get("new"):
                random.add(model)
        elif kind == "bench" and (parsed := paths.parse_key(path)):
            model, bs = parsed
            rows += [Row(model, "throughput", bs, k, number(values[k].get("old")), number(values[k].get("new")))
                     for k in THROUGHPUT_KEYS if k in values]
    order = {k: i for i, k in enumerate(ACCURACY_KEYS + THROUGHPUT_KEYS)}
    rows.sort(key=lambda r: (r.model, r.kind, r.bs or 0, order[r.metric]))
    return rows, random


def metrics_diff(base: str, head: str) -> tuple[list[Row], set[str], list[str]]:
    """Rows, random-weight models and warnings (a revision that contributed no number at all)."""
    diff, stderr = dvc_json(["metrics", "diff", "--json", "--all", base, head])
    rows, random = parse_metrics_diff(diff)
    warnings = [ln.strip() for ln in stderr.splitlines() if "failed to load" in ln.lower()]
    for rev, side in ((base, "old"), (head, "new")):
        if not any(getattr(r, side) is not None for r in rows):
            warnings.append(f"no omzoo metrics at {rev!r} (nothing under metrics/eval or metrics/bench committed?)")
    return rows, random, warnings


def _signed(v: float | None, digits: int, suffix: str = "") -> str:
    return "–" if v is None else f"{v:+.{digits}f}{suffix}"


def metrics_tables(rows: list[Row], base: str, head: str) -> str:
    """Two GitHub tables: accuracy per model, then throughput per model and batch size."""
    from tabulate import tabulate

    old, new = f"old ({base})", f"new ({head})"
    acc = [[r.model, r.metric, fmt(r.old), fmt(r.new), _signed(r.delta, 2), _signed(r.pct, 1, " %")]
           for r in rows if r.kind == "accuracy"]
    tput = [[r.model, r.bs, r.metric, fmt(r.old, 2 if r.metric.endswith("ms.p99") else 1),
             fmt(r.new, 2 if r.metric.endswith("ms.p99") else 1),
             _signed(r.delta, 2 if r.metric.endswith("ms.p99") else 1), _signed(r.pct, 1, " %")]
            for r in rows if r.kind == "throughput"]
    parts = ["### Accuracy", ""]
    parts.append(tabulate(acc, ["model", "metric", old, new, "delta", "%"], tablefmt="github", disable_numparse=True)
                 if acc else "No accuracy metrics in either revision.")
    parts += ["", "### Throughput (img/s; e2e_ms.p99 in ms, lower is better)", ""]
    parts.append(tabulate(tput, ["model", "bs", "metric", old, new, "delta", "%"], tablefmt="github",
                          disable_numparse=True) if tput else "No throughput metrics in either revision.")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------- params diff


def params_diff(base: str, head: str) -> list[dict[str, str]]:
    """Changed parameters only, sorted by file and key; dict/list values shown as JSON."""
    diff, _ = dvc_json(["params", "diff", "--json", base, head])

    def show(v: Any) -> str:
        return "–" if v is None else (json.dumps(v) if isinstance(v, dict | list) else str(v))

    return [{"file": f, "param": k, "old": show(v.get("old")), "new": show(v.get("new"))}
            for f in sorted(diff) for k, v in sorted(diff[f].items())]


def params_table(rows: list[dict[str, str]], base: str, head: str) -> str:
    from tabulate import tabulate

    if not rows:
        return "No parameter differs."
    return tabulate([[r["file"], r["param"], r["old"], r["new"]] for r in rows],
                    ["file", "param", f"old ({base})", f"new ({head})"], tablefmt="github", disable_numparse=True)




def compare(base: str, head: str, out: Path, plots: bool = True) -> tuple[str, list[str]]:
    """The whole comparison as markdown (also written to <out>/compare.md, rows to compare.json)."""
    for rev in (base, head):
        check_revision(rev)
    rows, random, warnings = metrics_diff(base, head)
    params = params_diff(base, head)
    md = [f"## omzoo compare: {base} → {head}", ""]
    if random:
        md += [f"Random weights: accuracy means nothing for {', '.join(sorted(random))} "
               "(it only shows every stage ran); throughput is real.", ""]
    md += [metrics_tables(rows, base, head), "", "### Parameters", "", params_table(params, base, head)]
    if plots:
        try:
            page = render_plots([base, head], out)
            md += ["", f"Throughput plot: {page} (offline HTML) and {out / 'throughput.png'}."]
        except DvcError as e:  # a plot missing on one side must not hide the metrics comparison
            warnings.append(str(e))
    if warnings:
        md += ["", "### Warnings", ""] + [f"- {w}" for w in warnings]
    text = "\n".join(md) + "\n"
    write_bytes_atomic(out / "compare.md", text.encode())
    write_json_atomic(out / "compare.json", {
        "base": base, "head": head, "random_weights": sorted(random), "params": params, "warnings": warnings,
        "metrics": [{**asdict(r), "delta": r.delta, "pct": r.pct} for r in rows]})
    return text, warnings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", nargs="?", help="base revision (branch, tag, commit)")
    p.add_argument("head", nargs="?", help="revision to compare against BASE (default: the workspace)")
    p.add_argument("--out", type=Path, help="output dir (default reports/compare; reports/plots for --plots-only)")
    p.add_argument("--no-plots", action="store_true", help="metrics and params only")
    p.add_argument("--plots-only", action="store_true", help="render this workspace's throughput plot offline")


def run(args: argparse.Namespace) -> int:
    if args.plots_only:
        page = render_plots(None, args.out or Path("reports/plots"))
        print(f"throughput plot (offline): {page}")
        return 0
    if not args.base:
        raise ValueError("usage: omzoo compare BASE [HEAD] [--out DIR] (or --plots-only)")
    text, warnings = compare(args.base, args.head or "workspace", args.out or Path("reports/compare"),
                             plots=not args.no_plots)
    print(text, end="")
    for w in warnings:
        print(f"omzoo compare: warning: {w}", file=sys.stderr)
    return 0
