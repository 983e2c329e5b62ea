"""The report's throughput tables: medians with their intervals, contended points marked, failures named."""

from __future__ import annotations

from pathlib import Path

from omzoo.core.params import load_params
from omzoo.results.summary import bench_table, throughput_rows, with_interval, write_png

ROOT = Path(__file__).resolve().parents[1]


def _bench(ips: float, contended: int = 0) -> dict:
    return {"bs": 8, "throughput_compute_ips": ips, "throughput_compute_ci_low": ips - 2.0,
            "throughput_compute_ci_high": ips + 3.0, "throughput_compute_cv": 0.01, "throughput_e2e_ips": ips - 1,
            "contended": contended, "e2e_ms": {"p50": 1.0, "p99": 2.0}}


def test_a_throughput_is_shown_with_its_interval_and_contention() -> None:
    assert with_interval(_bench(100.0)) == "100.0 [98.0, 103.0]"
    assert with_interval(_bench(100.0, contended=1)) == "100.0 [98.0, 103.0] †"
    assert with_interval({}) == "–"


def test_bench_table_marks_contended_and_failed_points(tmp_path: Path) -> None:
    import json

    for m, body in (("scnet50_v1d", _bench(50.0, contended=1)), ("tresnet_m", {"bs": 8, "failed": 1})):
        (tmp_path / "metrics" / "bench").mkdir(parents=True, exist_ok=True)
        (tmp_path / "metrics" / "bench" / f"{m}-8.json").write_text(json.dumps(body))
    table = bench_table(load_params(ROOT / "params.yaml"), tmp_path, [8], "*")
    assert "50.0 [48.0, 53.0] †" in table and "contended" in table.split("\n\n")[-1]
    assert "failed: out of memory" in table and "not measured" in table  # seresnext has no file at all
    assert "| 2094 " in table  # the published 310P figure for SCNet at bs 8


def test_the_plot_draws_error_bars(tmp_path: Path) -> None:
    data = {"scnet50_v1d": {"bench": {1: (_bench(10.0), {}), 8: (_bench(40.0, contended=1), {})}}}
    rows = throughput_rows(data)
    assert [r["throughput_compute_ci_high"] for r in rows] == [13.0, 43.0] and rows[1]["contended"] == 1
    write_png(rows, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
