"""`omzoo compare`: what changed between two toolkit branches (metrics, params, throughput plot).

Everything is read through `dvc ... --json` from git: metrics, params and the plot's CSV are committed
with `cache: false`, so a comparison runs on any clone without `dvc pull` (DVC.md §13). DVC exits 0 when
it fails to load a revision's metrics and does not sort its rows (DVC.md §5), so the JSON *content* is
checked and sorted here. The plot is rendered with no CDN (DVC.md §7): a matplotlib PNG inlined in a
script-free HTML page, plus an interactive page with vega/vega-lite/vega-embed inlined when the optional
`vl-convert-python` package is installed.

Two workspace-only modes serve the Makefile: `--bench-table` (`make bench`) and `--plots-only` (`make plots`).
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import html
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from omzoo import zoo
from omzoo.io import atomic_write, write_bytes_atomic, write_json_atomic
from omzoo.params import load_params
from omzoo.report import fmt, ratio, read_json

HELP = "compare metrics, params and the throughput plot between two revisions (or print the bench table)"

ACCURACY_KEYS = ("top1", "top2", "top3", "top4", "top5")
THROUGHPUT_KEYS = ("throughput_compute_ips", "throughput_e2e_ips", "e2e_ms.p99")
PLOT_ID = "throughput"
#: A <script src=...> or <link href=...> that reaches the network: what an offline page must not have.
_REMOTE_ASSET = re.compile(r"<(script|link)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", re.IGNORECASE)


class DvcError(ValueError):
    """A dvc command failed; the message carries its own error line (a ValueError, so the CLI prints it)."""


# --------------------------------------------------------------------------------------------- dvc / git


def _dvc_env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}


def dvc_json(args: list[str]) -> tuple[Any, str]:
    """Run `dvc ARGS` (the dvc of this interpreter, whatever PATH says) and return (parsed stdout, stderr).

    Python's json accepts the bare NaN token DVC writes for NaN metrics (DVC.md §5).
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True, env=_dvc_env())
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise DvcError(f"`dvc {' '.join(args)}` failed: {errors[-1] if errors else f'exit {proc.returncode}'}")
    text = proc.stdout.strip()
    return (json.loads(text) if text else {}), proc.stderr


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def check_revision(rev: str) -> None:
    """Fail early, by name, on a revision git cannot resolve (DVC's own message is a bare traceback-ish line).

    Like DVC, a branch that exists only on a remote (`origin/<rev>` after `git fetch`) is accepted.
    """
    if rev == "workspace" or _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0:
        return
    if _git("for-each-ref", "--format=%(refname)", f"refs/remotes/*/{rev}").stdout.strip():
        return
    known = _git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags").stdout.split()
    raise ValueError(f"unknown revision {rev!r}: no branch, tag or commit of that name here "
                     f"(local branches and tags: {', '.join(known) or 'none'}; `git fetch --all` for remote ones)")


# ------------------------------------------------------------------------------------------ metrics diff


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


def _number(v: Any) -> float | None:
    """Only real numbers compare: strings ("error"), null and booleans become None."""
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(v)


def parse_metrics_diff(diff: dict[str, Any]) -> tuple[list[Row], set[str]]:
    """Sorted rows from `dvc metrics diff --json --all` (keys flattened with dots), and the models
    either side marks as random-weight runs. Paths are metrics/eval/<model>.json and
    metrics/bench/<model>-<bs>.json; anything else under the metrics dirs is ignored."""
    rows: list[Row] = []
    random: set[str] = set()
    for path, values in diff.items():
        p = PurePosixPath(path.replace("\\", "/"))
        if p.parent.name == "eval":
            model = p.stem
            rows += [Row(model, "accuracy", None, k, _number(values[k].get("old")), _number(values[k].get("new")))
                     for k in ACCURACY_KEYS if k in values]
            rw = values.get("random_weights", {})
            if rw.get("old") or rw.get("new"):
                random.add(model)
        elif p.parent.name == "bench":
            model, _, bs = p.stem.rpartition("-")
            if not model or not bs.isdigit():
                continue
            rows += [Row(model, "throughput", int(bs), k, _number(values[k].get("old")), _number(values[k].get("new")))
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


# ------------------------------------------------------------------------------------------------- plots


def plot_spec(revisions: list[str] | None) -> dict[str, Any]:
    """The filled Vega-Lite spec of the `throughput` plot: `plots diff` across revisions, or `plots show`
    for the workspace. Revisions go before `--targets`, which would otherwise swallow them."""
    args = ["plots", "diff", *revisions, "--targets", PLOT_ID] if revisions else ["plots", "show", PLOT_ID]
    out, stderr = dvc_json([*args, "--json"])
    for entry in (out.get("data") or {}).get(PLOT_ID, []):
        if entry.get("type") == "vega" and entry.get("content", {}).get("data", {}).get("values"):
            return entry["content"]
    why = [ln.strip() for ln in stderr.splitlines() if ln.strip()] + [json.dumps(out.get("errors", ""))]
    raise DvcError(f"no data for plot {PLOT_ID!r} at {', '.join(revisions or ['workspace'])} "
                   f"(has the report stage run and reports/throughput.csv been committed?): {' '.join(why)[:300]}")


def plot_png(spec: dict[str, Any], path: Path) -> None:
    """Grouped horizontal bars, one group per y value (model/bs), one bar per revision, starting at zero."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    enc = spec.get("encoding", {})
    xf, yf = enc.get("x", {}).get("field", "throughput_compute_ips"), enc.get("y", {}).get("field", "config")
    values = spec["data"]["values"]
    revs = list(dict.fromkeys(v.get("rev", "workspace") for v in values))
    cats = sorted(dict.fromkeys(str(v[yf]) for v in values), reverse=True)  # top-down in sort order
    colours = enc.get("color", {}).get("scale", {}).get("range") or [None] * len(revs)
    height = 0.8 / len(revs)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(cats) * len(revs)), dpi=110)
    for i, rev in enumerate(revs):
        pts = {str(v[yf]): float(v[xf]) for v in values if v.get("rev", "workspace") == rev and _number_str(v[xf])}
        ys = [c for c in cats if c in pts]
        pos = [cats.index(c) + (len(revs) - 1 - i - (len(revs) - 1) / 2) * height for c in ys]
        bars = ax.barh(pos, [pts[c] for c in ys], height=height * 0.95, label=rev,
                       color=colours[i % len(colours)] if colours[0] else None)
        ax.bar_label(bars, labels=[f"{pts[c]:,.1f}" for c in ys], padding=2, fontsize=7)
    ax.set_yticks(range(len(cats)), cats, fontsize=8)
    ax.set_xlabel(xf)
    ax.set_xlim(0, ax.get_xlim()[1] * 1.12)  # room for the value labels
    ax.set_title(f"{PLOT_ID}: {' vs '.join(revs)}")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _number_str(v: Any) -> bool:
    """CSV values reach the spec as strings (DVC.md §7); empty ones are a missing measurement."""
    try:
        return not math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def assert_offline(page: str, name: str) -> None:
    """An offline page must not load a script or stylesheet from the network."""
    hit = _REMOTE_ASSET.search(page)
    if hit:
        raise ValueError(f"{name}: loads {hit.group(0)!r}… from the network; it would not render offline")


def static_html(spec: dict[str, Any], png: Path, title: str, interactive: str | None) -> str:
    """A script-free page: the PNG inlined, the data as a table, the Vega-Lite spec for reference."""
    enc = spec.get("encoding", {})
    xf, yf = enc.get("x", {}).get("field", ""), enc.get("y", {}).get("field", "")
    revs = list(dict.fromkeys(str(v.get("rev")) for v in spec["data"]["values"]))
    values = sorted(spec["data"]["values"], key=lambda v: (str(v.get(yf)), revs.index(str(v.get("rev")))))
    rows = "\n".join(f"<tr><td>{html.escape(str(v.get('rev', '')))}</td><td>{html.escape(str(v.get(yf)))}</td>"
                     f"<td style='text-align:right'>{html.escape(str(v.get(xf)))}</td></tr>" for v in values)
    img = base64.b64encode(png.read_bytes()).decode()
    link = f'<p><a href="{html.escape(interactive)}">interactive version</a> (vega inlined, offline)</p>' \
        if interactive else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px}} pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<img alt="{PLOT_ID} plot" style="max-width:100%" src="data:image/png;base64,{img}">
{link}
<h2>Data</h2>
<table><tr><th>rev</th><th>{html.escape(yf)}</th><th>{html.escape(xf)}</th></tr>
{rows}
</table>
<details><summary>Vega-Lite spec (from dvc)</summary><pre>{html.escape(json.dumps(spec, indent=2))}</pre></details>
</body></html>
"""


def interactive_html(spec: dict[str, Any]) -> str | None:
    """Vega-Lite page with vega, vega-lite and vega-embed inlined, when `vl-convert-python` is installed."""
    try:
        import vl_convert as vlc
    except ImportError:
        return None
    major = "6" if "/v6" in str(spec.get("$schema", "")) else "5"
    versions = [v for v in vlc.get_vegalite_versions() if v.split(".")[0] == major]
    best = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)
    return vlc.vegalite_to_html(spec, vl_version=best, bundle=True) if best else None


def render_plots(revisions: list[str] | None, out: Path) -> Path:
    """Write <out>/throughput.png and <out>/index.html (plus interactive.html when possible); all offline."""
    spec = plot_spec(revisions)
    png = out / "throughput.png"
    plot_png(spec, png)
    title = f"omzoo {PLOT_ID}: " + (" vs ".join(revisions) if revisions else "workspace")
    interactive = interactive_html(spec)
    if interactive is not None:
        assert_offline(interactive, "interactive.html")
        write_bytes_atomic(out / "interactive.html", interactive.encode())
    page = static_html(spec, png, title, "interactive.html" if interactive else None)
    assert_offline(page, "index.html")
    write_bytes_atomic(out / "index.html", page.encode())
    return out / "index.html"


# ------------------------------------------------------------------------------------------- bench table


def bench_table(params: dict[str, Any], metrics_dir: Path, bs: int, pattern: str) -> str:
    """This workspace's numbers at one batch size next to the published 310P and T4 figures."""
    from tabulate import tabulate

    models = [m for m in params.get("models") or {} if fnmatch.fnmatchcase(m, pattern)]
    if not models:
        raise ValueError(f"no model in params.yaml matches {pattern!r} (have: {', '.join(params.get('models') or {})})")
    rows = []
    for m in models:
        metrics = read_json(metrics_dir / "bench" / f"{m}-{bs}.json")
        info = read_json(metrics_dir / "info" / "bench" / f"{m}-{bs}.json")
        published = zoo.REGISTRY[m].published_throughput if m in zoo.REGISTRY else {}
        ours = metrics.get("throughput_compute_ips")
        lat = metrics.get("e2e_ms", {})
        row: list[Any] = [m, bs, fmt(ours, 1), fmt(metrics.get("throughput_e2e_ips"), 1), fmt(lat.get("p50")),
                          fmt(lat.get("p99"))]
        if info.get("error"):
            row[2] = f"error: {info['error'][:40]}"
        elif not metrics:
            row[2] = "not measured"
        for platform in ("310P", "T4"):
            pub = published.get(platform, {}).get(bs)
            row += [fmt(pub, 1), ratio(ours, pub)]
        rows.append(row)
    return tabulate(rows, ["model", "bs", "compute img/s", "e2e img/s", "p50 ms", "p99 ms", "310P img/s", "ours/310P",
                           "T4 img/s", "ours/T4"], tablefmt="github", disable_numparse=True)


# ------------------------------------------------------------------------------------------------- verb


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
    p.add_argument("--bench-table", action="store_true", help="print this workspace's bench table for --bs")
    p.add_argument("--bs", type=int, help="batch size for --bench-table")
    p.add_argument("--model", default="*", help="model glob for --bench-table (default: all in params.yaml)")
    p.add_argument("--plots-only", action="store_true", help="render this workspace's throughput plot offline")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--metrics", type=Path, default=Path("metrics"))


def run(args: argparse.Namespace) -> int:
    if args.bench_table:
        if args.bs is None:
            raise ValueError("--bench-table needs --bs N")
        print(bench_table(load_params(args.params), args.metrics, args.bs, args.model))
        return 0
    if args.plots_only:
        page = render_plots(None, args.out or Path("reports/plots"))
        print(f"throughput plot (offline): {page}")
        return 0
    if not args.base:
        raise ValueError("usage: omzoo compare BASE [HEAD] [--out DIR] (or --bench-table / --plots-only)")
    text, warnings = compare(args.base, args.head or "workspace", args.out or Path("reports/compare"),
                             plots=not args.no_plots)
    print(text, end="")
    for w in warnings:
        print(f"omzoo compare: warning: {w}", file=sys.stderr)
    return 0
