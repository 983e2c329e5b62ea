"""The throughput outputs: reports/throughput.csv (what dvc.yaml's `throughput` plot reads: x
`throughput_compute_ips`, y `config`) and the one matplotlib figure of throughput vs batch size, drawn for the
report's throughput.png and for the offline plot of `omzoo compare` (omzoo.results.plots)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omzoo.core import paths
from omzoo.core.io import write_bytes_atomic
from omzoo.core.metrics import checked, nest
from omzoo.core.params import REFERENCE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSV_FIELDS = ["model", "batch_size", "precision", "config", "throughput_compute_ips", "throughput_compute_ci_low",
              "throughput_compute_ci_high", "throughput_e2e_ips", "latency_p99_ms", "contended"]
TITLE = "Throughput vs batch size (median of rounds, 95 % interval; hollow = contended)"
_LINES = ("-", "--", ":", "-.")  # one per revision; the colour is the model's


def throughput_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for the CSV that `dvc plots` and the PNG read (a failed or unmeasured point has none); `config`
    is the point's key, `scnet50_v1d-8-fp32` (omzoo.core.paths.key)."""
    rows = []
    for m, d in data.items():
        for precision, per in d.get("precisions", {REFERENCE: d}).items():
            for bs, (metrics, _info) in per["bench"].items():
                if "throughput_compute_ips" not in metrics:
                    continue
                rows.append(_row(m, bs, precision, metrics))
    return rows


def _row(m: str, bs: int, precision: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {"model": m, "batch_size": bs, "precision": precision, "config": paths.key(m, bs, precision),
            "throughput_compute_ips": metrics["throughput_compute_ips"],
            "throughput_compute_ci_low": metrics.get("throughput_compute_ci_low"),
            "throughput_compute_ci_high": metrics.get("throughput_compute_ci_high"),
            "throughput_e2e_ips": metrics["throughput_e2e_ips"],
            "latency_p99_ms": metrics["e2e_ms"]["p99"], "contended": metrics.get("contended", 0)}


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, buf.getvalue().encode())


def _csv_number(v: Any) -> float | None:
    """A CSV cell as a number; an empty one (a missing interval) or NaN is None."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


#: the CSV's number columns and the metric (omzoo.core.metrics.SCHEMA) each one holds
_METRIC_OF = {"batch_size": "bs", "throughput_compute_ips": "throughput_compute_ips",
              "throughput_compute_ci_low": "throughput_compute_ci_low",
              "throughput_compute_ci_high": "throughput_compute_ci_high", "throughput_e2e_ips": "throughput_e2e_ips",
              "latency_p99_ms": "e2e_ms.p99", "contended": "contended"}


def parse_row(values: dict[str, Any]) -> dict[str, Any] | None:
    """One CSV row read back (every cell a string, as `dvc plots` hands them over, docs/dvc.md §7) as the row
    throughput_rows wrote; None for a row without a throughput. Other keys (`rev`) are kept. Each number is checked
    as its metric is in a metrics file (omzoo.core.metrics.checked): a cell that is not one, a negative one or a
    median outside its interval fails naming the revision's CSV, the row and the column."""
    cells = {col: values[col] for col in _METRIC_OF if values.get(col) not in (None, "")}
    if "throughput_compute_ips" not in cells or "batch_size" not in cells:
        return None
    parsed = {col: x if (x := _csv_number(v)) is not None else v for col, v in cells.items()}
    where = f"{values.get('rev', 'workspace')}:{paths.REPORTS / 'throughput.csv'} row {values.get('config')}"
    checked("bench", nest({_METRIC_OF[col]: v for col, v in parsed.items()}), where)
    numbers = {k: parsed.get(k) for k in ("throughput_compute_ci_low", "throughput_compute_ci_high",
                                          "throughput_e2e_ips", "latency_p99_ms")}
    return {**values, **numbers, "batch_size": int(parsed["batch_size"]),
            "throughput_compute_ips": parsed["throughput_compute_ips"], "contended": int(parsed.get("contended", 0))}


def figure(rows: list[dict[str, Any]], title: str = TITLE) -> Figure:
    """Throughput vs batch size: one line per model and precision (and revision where the rows carry `rev`) with the
    rounds' interval as error bars; contended points hollow."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    ax = fig.subplots()
    models = list(dict.fromkeys(r["model"] for r in rows))
    revs = list(dict.fromkeys((r.get("rev"), r.get("precision") or REFERENCE) for r in rows))
    for (i, m), (j, (rev, precision)) in [(mi, rj) for mi in enumerate(models) for rj in enumerate(revs)]:
        pts = sorted((r for r in rows if r["model"] == m and (r.get("rev"), r.get("precision") or REFERENCE)
                      == (rev, precision)), key=lambda r: r["batch_size"])
        if not pts:
            continue
        label = m if precision == REFERENCE else f"{m} {precision}"
        x, y = [r["batch_size"] for r in pts], [r["throughput_compute_ips"] for r in pts]
        low = [y_ - (r["throughput_compute_ci_low"] if r["throughput_compute_ci_low"] is not None else y_)
               for r, y_ in zip(pts, y, strict=True)]
        high = [(r["throughput_compute_ci_high"] if r["throughput_compute_ci_high"] is not None else y_) - y_
                for r, y_ in zip(pts, y, strict=True)]
        colour = f"C{i % 10}"
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, color=colour, linestyle=_LINES[j % len(_LINES)],
                    label=label if rev is None else f"{label} ({rev})")
        hollow = [(r["batch_size"], r["throughput_compute_ips"]) for r in pts if r["contended"]]
        if hollow:
            ax.scatter(*zip(*hollow, strict=True), s=80, facecolors="white", edgecolors=colour, zorder=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("images / s (compute)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def png_bytes(rows: list[dict[str, Any]], title: str = TITLE) -> bytes:
    """The figure as PNG bytes, for a caller that commits it together with the rest of its result."""
    buf = io.BytesIO()
    figure(rows, title).savefig(buf, format="png")
    return buf.getvalue()


def write_png(rows: list[dict[str, Any]], path: Path, title: str = TITLE) -> None:
    """The figure as a PNG, for people who read the markdown (the report)."""
    write_bytes_atomic(path, png_bytes(rows, title))
