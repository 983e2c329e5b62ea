"""The precision frontier (omzoo.results.frontier) from metrics files written as the stages write them
(omzoo.core.metrics.record), read back by collect: one row per precision x batch size with the speed-up over fp32,
the agreement with fp32 and the published 310P fp16 figure; missing data as "–"; reports/frontier.png written by
the report stage beside the other report files."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from omzoo import cli
from omzoo.core import paths
from omzoo.core.metrics import record
from omzoo.core.params import Params
from omzoo.results import frontier
from omzoo.results.collect import collect
from omzoo.results.summary import summary_markdown
from omzoo.stages import report

ROOT = Path(__file__).resolve().parents[1]
MODEL = "scnet50_v1d"  # published 310P: bs1 956, bs8 2094


def _bench(ips: float, bs: int, contended: int = 0) -> dict[str, Any]:
    return record("bench", {"bs": bs, "throughput_compute_ips": ips, "throughput_compute_ci_low": ips - 2.0,
                            "throughput_compute_ci_high": ips + 3.0, "throughput_e2e_ips": ips - 1.0,
                            "contended": contended, "e2e_ms": {"p50": 1.0, "p99": 2.0}})


def _eval(**agreement: float) -> dict[str, Any]:
    return record("eval", {"top1": 1.0, "top5": 5.0, "n_images": 64, "random_weights": 1,
                           **{f"agreement_{k}": v for k, v in agreement.items()}})


def _write(root: Path, files: dict[Path, dict[str, Any]]) -> None:
    for path, body in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(body))


def _tree(root: Path, int8_bench: bool = True) -> None:
    """fp32 at bs 1 and 8, int8 at bs 1 (and 8 unless told), fp32 and int8 evaluated."""
    files = {paths.bench_metrics(MODEL, 1): _bench(100.0, 1), paths.bench_metrics(MODEL, 8): _bench(400.0, 8),
             paths.bench_metrics(MODEL, 1, "int8"): _bench(150.0, 1),
             paths.eval_metrics(MODEL): _eval(),
             paths.eval_metrics(MODEL, "int8"): _eval(top1=96.875, top5=91.25, changed=2, max_abs_dlogit=0.0123,
                                                       mean_abs_dlogit=0.002, cosine=0.999, cosine_min=0.98),
             paths.eval_info(MODEL, "int8"): {"agreement_changed_images": ["a.JPEG", "b.JPEG"],
                                              "precision_quant_format": "QDQ"}}
    if int8_bench:
        files[paths.bench_metrics(MODEL, 8, "int8")] = _bench(1000.0, 8, contended=1)
    _write(root, files)


def _params(precisions: list[str]) -> Params:
    return Params({"models": {MODEL: {}}, "batch_sizes": [1, 8], "precisions": precisions, "backend": "onnxruntime",
                   "report": {"platforms": ["310P"]}}, Path("params.yaml"))


def _rows(root: Path, precisions: list[str]) -> dict[tuple[str, str], list[str]]:
    data = collect(root, _params(precisions))
    return {(r[0], r[1]): r for r in frontier.frontier_rows(MODEL, frontier.precisions_of(data[MODEL]))}


def test_fp32_and_int8_rows_with_speed_up_and_agreement(tmp_path: Path) -> None:
    _tree(tmp_path)
    rows = _rows(tmp_path, ["fp32", "int8"])
    assert list(rows) == [("1", "fp32"), ("1", "int8"), ("8", "fp32"), ("8", "int8")]  # fp32 first per bs
    assert rows[("1", "fp32")][2:8] == ["100.0 [98.0, 103.0]", "1.00", "100.00", "100.00", "0", "0 of 64"]
    assert rows[("1", "int8")][2:8] == ["150.0 [148.0, 153.0]", "1.50", "96.88", "91.25", "0.0123", "2 of 64"]
    assert rows[("8", "int8")][2:4] == ["1000.0 [998.0, 1003.0] †", "2.50 †"]  # contended: marked, never hidden
    assert rows[("8", "int8")][4] == "96.88"  # agreement is per precision: the same on every batch size


def test_missing_int8_bench_and_eval_show_as_a_dash(tmp_path: Path) -> None:
    _tree(tmp_path, int8_bench=False)
    (tmp_path / paths.eval_metrics(MODEL, "int8")).unlink()
    rows = _rows(tmp_path, ["fp32", "int8"])
    assert rows[("8", "int8")][2:9] == ["–"] * 7  # throughput, speed-up, four agreement cells, 310P: none is 0
    assert rows[("1", "int8")][2:4] == ["150.0 [148.0, 153.0]", "1.50"]
    assert rows[("1", "int8")][4:8] == ["–"] * 4
    assert not any(p["precision"] == "int8" for p in frontier.frontier_points(collect(tmp_path, _params(
        ["fp32", "int8"]))))  # no agreement, no point on the plot


def test_the_310P_fp16_figure_sits_beside_our_fp16_row(tmp_path: Path) -> None:
    _tree(tmp_path)
    _write(tmp_path, {paths.bench_metrics(MODEL, 8, "fp16"): _bench(700.0, 8)})
    rows = _rows(tmp_path, ["fp32", "fp16", "int8"])
    assert rows[("8", "fp16")][8] == "2094" and rows[("1", "fp16")][8] == "956"
    assert rows[("8", "fp32")][8] == rows[("8", "int8")][8] == "–"
    assert rows[("1", "fp16")][2:4] == ["–", "–"]  # fp16 configured but not measured at bs 1
    # no fp16 configured: the published figure stays on the reference row, never lost
    rows = _rows(tmp_path, ["fp32", "int8"])
    assert (rows[("8", "fp32")][8], rows[("8", "int8")][8]) == ("2094", "–")


def test_fp32_alone_gives_one_row_per_batch_size(tmp_path: Path) -> None:
    _tree(tmp_path)
    rows = _rows(tmp_path, ["fp32"])
    assert list(rows) == [("1", "fp32"), ("8", "fp32")]
    assert rows[("8", "fp32")][3] == "1.00" and rows[("8", "fp32")][8] == "2094"


def test_the_summary_has_the_frontier_section(tmp_path: Path) -> None:
    _tree(tmp_path)
    text = summary_markdown(collect(tmp_path, _params(["fp32", "int8"])), _params(["fp32", "int8"]))
    section = text.split("### Precision frontier")[1]
    assert section.startswith(" (fp32, int8; 310P published at fp16, atc's default force_fp16)")
    assert "ratio of two separate runs' medians" in section and "`make bench-precision`" in section
    assert "310P fp16 img/s (published)" in section
    assert re.search(r"\| 1 +\| int8 +\| 150\.0 \[148\.0, 153\.0\] +\| 1\.50 +\| 96\.88 +\| 91\.25 +\| 0\.0123 +\| "
                     r"2 of 64 +\| – +\|", section), section
    assert "int8 changes the top-1 of 2 images: `a.JPEG`, `b.JPEG`." in section


def test_the_report_stage_writes_frontier_png(tmp_path: Path) -> None:
    _tree(tmp_path)
    params = (ROOT / "params.yaml").read_text()
    params = re.sub(r"(?ms)^models:\n.*?\n\n", f"models:\n  {MODEL}: {{checkpoint: \"\", pixels: bilinear224}}\n\n",
                    params)
    params = re.sub(r"(?m)^precisions: .*$", "precisions: [fp32, int8]", params)
    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^batch_sizes: .*$", "batch_sizes: [1, 8]", params))
    out = tmp_path / "reports"
    args: argparse.Namespace = cli.verb_parser("report")[1].parse_args(
        ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path), "--out", str(out)])
    assert report.run(args) == 0
    for name in ("summary.md", "throughput.csv", "throughput.png", "frontier.png"):
        assert (out / name).is_file(), name
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### Precision frontier (fp32, int8;" in (out / "summary.md").read_text()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "frontier.png", "summary.md", "throughput.csv", "throughput.png"]  # no temporary file left behind


def test_the_figure_draws_one_panel_per_model_and_an_empty_one(tmp_path: Path) -> None:
    _tree(tmp_path)
    points = frontier.frontier_points(collect(tmp_path, _params(["fp32", "int8"])))
    assert {(p["precision"], p["batch_size"]) for p in points} == {("fp32", 1), ("fp32", 8), ("int8", 1), ("int8", 8)}
    fig = frontier.figure(points + [{**points[0], "model": "ran92_cifar10"}])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [MODEL, "ran92_cifar10"]
    assert {t.get_text() for t in fig.axes[0].texts} == {"fp32 bs1", "fp32 bs8", "int8 bs1", "int8 bs8"}
    frontier.write_png([], tmp_path / "empty.png")  # nothing measured yet: still a figure, never an error
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"
