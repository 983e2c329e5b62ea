"""The throughput outputs (omzoo.results.throughput): the CSV rows `dvc plots` reads, read back as `dvc plots`
hands them over, and the figure: its lines, its error bars (the rounds' interval) and its hollow contended points."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.container import ErrorbarContainer
from rounds_helpers import bench_metrics

from omzoo.results.throughput import CSV_FIELDS, figure, parse_row, throughput_rows, write_csv, write_png

DATA = {"scnet50_v1d": {"bench": {1: (bench_metrics(10.0), {}), 8: (bench_metrics(40.0, contended=1), {}),
                                  16: ({"failed": 1}, {})}}}


def test_rows_are_keyed_like_every_other_file_and_skip_failed_points() -> None:
    rows = throughput_rows(DATA)
    assert [(r["config"], r["batch_size"]) for r in rows] == [("scnet50_v1d-1-fp32", 1), ("scnet50_v1d-8-fp32", 8)]
    assert [r["throughput_compute_ci_high"] for r in rows] == [13.0, 43.0] and rows[1]["contended"] == 1
    assert rows[0]["latency_p99_ms"] == 2.0 and list(rows[0]) == CSV_FIELDS


def test_the_csv_reads_back_as_the_rows_written(tmp_path: Path) -> None:
    rows = throughput_rows(DATA)
    rows[0]["throughput_compute_ci_low"] = None  # measured before intervals were kept
    write_csv(rows, tmp_path / "t.csv")
    with (tmp_path / "t.csv").open() as f:
        cells = list(csv.DictReader(f))  # strings, as `dvc plots` hands them over
    assert cells[0]["throughput_compute_ci_low"] == "" and cells[1]["config"] == "scnet50_v1d-8-fp32"
    assert [parse_row({**c, "rev": "main"}) for c in cells] == [{**r, "rev": "main"} for r in rows]
    assert parse_row({**cells[0], "throughput_compute_ips": ""}) is None  # a point without a number: not drawn


def _bars(ax) -> dict[str, list[tuple[float, float, float]]]:
    """Per line label, each error bar as (x, low, high), read back from the drawn segments."""
    out = {}
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            _data, _caps, (bars,) = c.lines
            out[c.get_label()] = [(s[0][0], s[0][1], s[1][1]) for s in map(np.asarray, bars.get_segments())]
    return out


def test_the_plot_draws_error_bars(tmp_path: Path) -> None:
    rows = throughput_rows(DATA)
    fig = figure(rows)
    (ax,) = fig.axes
    assert _bars(ax) == {"scnet50_v1d": [(1.0, 8.0, 13.0), (8.0, 38.0, 43.0)]}  # [ci_low, ci_high] at each bs
    line = ax.containers[0].lines[0]
    assert line.get_xdata().tolist() == [1, 8] and line.get_ydata().tolist() == [10.0, 40.0]  # the medians
    (hollow,) = ax.collections[1:]  # after the error bars: the contended point, drawn over it
    assert hollow.get_offsets().tolist() == [[8.0, 40.0]]
    assert ax.get_xscale() == "log" and ax.get_title().startswith("Throughput vs batch size")
    write_png(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_each_revision_is_a_line_of_its_own_in_the_models_colour() -> None:
    slow = {1: (bench_metrics(5.0), {}), 8: (bench_metrics(20.0), {})}
    rows = [{**r, "rev": rev} for rev, bench in (("main", DATA["scnet50_v1d"]["bench"]), ("slow", slow))
            for r in throughput_rows({"scnet50_v1d": {"bench": bench}})]
    rows[-1] = {**rows[-1], "throughput_compute_ci_low": None, "throughput_compute_ci_high": None}
    ax = figure(rows, "throughput: main vs slow").axes[0]
    bars = _bars(ax)
    assert list(bars) == ["scnet50_v1d (main)", "scnet50_v1d (slow)"]
    assert bars["scnet50_v1d (slow)"][-1] == (8.0, 20.0, 20.0)  # no interval recorded: a bar of no length
    main, slow = (c.lines[0] for c in ax.containers)
    assert main.get_color() == slow.get_color() and main.get_linestyle() != slow.get_linestyle()
    assert ax.get_title() == "throughput: main vs slow"


def test_an_empty_plot_still_renders(tmp_path: Path) -> None:
    write_png([], tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"
