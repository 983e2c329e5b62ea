"""The precision frontier: what each precision buys in speed and costs in agreement with fp32, per model.

One table row per precision x batch size (the report's "Precision frontier" section): our throughput (median with
its interval), the speed-up over fp32 at the same batch size, the agreement with fp32's logits (top-1, top-5,
max |Δlogit|, images whose top-1 changed) and the guides' published 310P figure. One figure, reports/frontier.png:
per model a panel of throughput (x, log) against top-1 agreement (y), one labelled marker per precision x bs.

The speed-up is the ratio of two medians from two separate bench runs (one per precision), so it carries the drift
between runs; `make bench-precision` measures the same ratio in interleaved pairs. Agreement is measured once per
model and precision (evaluate, on every image), so it is the same on every batch size's row. fp32 is the reference:
its agreement with itself is 100 % by definition. Missing data shows as "–", never as zero.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omzoo.core import zoo
from omzoo.core.io import atomic_write
from omzoo.core.metrics import fmt
from omzoo.core.params import REFERENCE
from omzoo.results.cells import failure, ratio, with_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: the platform whose published figure sits beside our rows, and the precision it was measured at (atc's default
#: --precision_mode force_fp16, which the guides' 310P numbers use)
PLATFORM, PLATFORM_PRECISION = "310P", "fp16"
HEADERS = ["bs", "precision", "ours img/s [interval ≥ 95 %]", "speed-up vs fp32", "top-1 agreement %",
           "top-5 overlap %", r"max \|Δlogit\|", "images changed", f"{PLATFORM} {PLATFORM_PRECISION} img/s (published)"]
NOTE = ("Speed-up = this precision's median throughput / fp32's at the same batch size: the ratio of two separate "
        "runs' medians, so the drift between runs (5-8 % on a shared machine) is in it; `make bench-precision` "
        "measures it in interleaved pairs. Agreement: with the same backend's fp32 logits on every image of the "
        "evaluation set, once per precision (the same on every batch size; fp32 is the reference, 100 by "
        f"definition). {PLATFORM}: the guides' published figure, measured with atc's default force_fp16, so an "
        f"{PLATFORM_PRECISION} number: on our {PLATFORM_PRECISION} row, or on the fp32 row where "
        f"{PLATFORM_PRECISION} is not configured.")
TITLE = "Precision frontier: throughput vs top-1 agreement with fp32\n(median, 95 % interval; hollow = contended)"
_MARKERS = {"fp32": "o", "fp16": "^", "bf16": "D", "mixed": "v", "int8": "s"}
EMPTY = "–"


def precisions_of(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A model's collected data per precision (collect's "precisions"; data from before precisions is fp32's)."""
    return d.get("precisions") or {REFERENCE: d}


def _ips(bench: dict[int, tuple[dict, dict]], bs: int) -> float | None:
    metrics, _info = bench.get(bs, ({}, {}))
    return metrics.get("throughput_compute_ips")


def agreement(precision: str, ev: dict[str, Any]) -> dict[str, Any]:
    """The agreement_* values of one precision (fp32: the reference's own, by definition); None where missing."""
    if precision == REFERENCE:
        return {"top1": 100.0, "top5": 100.0, "max_abs_dlogit": 0.0, "changed": 0, "n_images": ev.get("n_images")}
    return {"top1": ev.get("agreement_top1"), "top5": ev.get("agreement_top5"),
            "max_abs_dlogit": ev.get("agreement_max_abs_dlogit"), "changed": ev.get("agreement_changed"),
            "n_images": ev.get("n_images")}


def _changed(a: dict[str, Any]) -> str:
    if a["changed"] is None:
        return EMPTY
    return f"{a['changed']} of {a['n_images']}" if a.get("n_images") is not None else str(a["changed"])


def _dlogit(v: float | None) -> str:
    return EMPTY if v is None else ("0" if v == 0 else f"{v:.3g}")


def published_row(precisions: list[str]) -> str:
    """The precision whose rows carry the published figure: fp16 where configured, else the reference."""
    return PLATFORM_PRECISION if PLATFORM_PRECISION in precisions else REFERENCE


def frontier_rows(model_id: str, per: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per batch size x precision (the batch sizes in order, fp32 first within each): the table cells."""
    spec = zoo.get(model_id)
    published = spec.published_throughput.get(PLATFORM, {})
    beside = published_row(list(per))
    sizes = list(dict.fromkeys(bs for p in per.values() for bs in p["bench"]))
    order = [REFERENCE, *(p for p in per if p != REFERENCE)] if REFERENCE in per else list(per)
    reference = per.get(REFERENCE, {}).get("bench", {})
    rows = []
    for bs in sizes:
        for precision in order:
            d = per[precision]
            metrics, info = d["bench"].get(bs, ({}, {}))
            ips = metrics.get("throughput_compute_ips")
            speed = ratio(ips, _ips(reference, bs))
            if speed != EMPTY and (metrics.get("contended") or reference.get(bs, ({}, {}))[0].get("contended")):
                speed += " †"
            a = agreement(precision, d.get("eval", {}))
            rows.append([str(bs), precision, failure(metrics, info) if metrics.get("failed") or info.get("error")
                         else with_interval(metrics), speed, fmt(a["top1"]), fmt(a["top5"]),
                         _dlogit(a["max_abs_dlogit"]), _changed(a),
                         fmt(published.get(bs), 1) if precision == beside else EMPTY])
    return rows


def changed_images(per: dict[str, dict[str, Any]], limit: int = 10) -> list[str]:
    """One line per non-fp32 precision naming the images whose top-1 changed (the eval info file's list)."""
    lines = []
    for precision, d in per.items():
        names = d.get("eval_info", {}).get("agreement_changed_images")
        if precision == REFERENCE or not names:
            continue
        more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
        lines.append(f"{precision} changes the top-1 of {len(names)} image{'s' if len(names) != 1 else ''}: "
                     + ", ".join(f"`{n}`" for n in names[:limit]) + more + ".")
    return lines


def frontier_markdown(model_id: str, d: dict[str, Any]) -> list[str]:
    """The report's "Precision frontier" section of one model: heading, note, table, changed images."""
    from tabulate import tabulate

    per = precisions_of(d)
    lines = ["", f"### Precision frontier ({', '.join(per)}; {PLATFORM} published at {PLATFORM_PRECISION}, atc's "
             "default force_fp16)", "", NOTE, "",
             tabulate(frontier_rows(model_id, per), HEADERS, tablefmt="github", disable_numparse=True)]
    changed = changed_images(per)
    return lines + (["", *changed] if changed else [])


def frontier_points(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The figure's points: every (model, precision, bs) with both a throughput and a top-1 agreement."""
    points = []
    for m, d in data.items():
        for precision, per in precisions_of(d).items():
            top1 = agreement(precision, per.get("eval", {}))["top1"]
            for bs, (metrics, _info) in per["bench"].items():
                ips = metrics.get("throughput_compute_ips")
                if ips is None or top1 is None or not math.isfinite(ips) or ips <= 0:
                    continue
                points.append({"model": m, "precision": precision, "batch_size": bs, "ips": ips, "top1": top1,
                               "low": metrics.get("throughput_compute_ci_low"),
                               "high": metrics.get("throughput_compute_ci_high"),
                               "contended": int(metrics.get("contended", 0))})
    return points


def figure(points: list[dict[str, Any]], title: str = TITLE) -> Figure:
    """One panel per model: throughput (x, log) against top-1 agreement with fp32 (y), one marker per precision x bs
    with the throughput interval as x error bars, labelled `int8 bs8`; contended points hollow."""
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(p["model"] for p in points)) or ["(no measured points)"]
    cols = min(len(models), 3)
    rows = math.ceil(len(models) / cols)
    fig = Figure(figsize=(4.2 * cols + 0.5, 3.6 * rows + 0.6), dpi=110)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, (ax, m) in enumerate(zip(axes, models, strict=False)):
        pts = [p for p in points if p["model"] == m]
        colour = f"C{i % 10}"
        for p in pts:
            x, lo, hi = p["ips"], p["low"], p["high"]
            err = [[x - lo if lo is not None else 0.0], [hi - x if hi is not None else 0.0]]
            marker = _MARKERS.get(p["precision"], "o")
            ax.errorbar([x], [p["top1"]], xerr=err, marker=marker, color=colour, capsize=3, linestyle="none",
                        markerfacecolor="white" if p["contended"] else colour, markersize=7)
            ax.annotate(f"{p['precision']} bs{p['batch_size']}", (x, p["top1"]), textcoords="offset points",
                        xytext=(5, 4), fontsize=7)
        ax.set_xscale("log")
        ax.margins(x=0.2)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("images / s (compute, log)", fontsize=8)
        ax.set_ylabel("top-1 agreement with fp32 %", fontsize=8)
        ax.grid(True, alpha=0.3, which="both")
        tops = [p["top1"] for p in pts]
        if tops:
            low = min(tops)
            ax.set_ylim(max(0.0, low - max(1.0, (100 - low) * 0.15)), 100 + max(0.5, (100 - low) * 0.1))
        else:
            ax.text(0.5, 0.5, "no precision with both a throughput\nand an agreement", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    for ax in axes[len(models):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def write_png(points: list[dict[str, Any]], path: Path, title: str = TITLE) -> None:
    """reports/frontier.png (the report stage writes it inside its one atomic commit of every report file)."""
    fig = figure(points, title)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png")
