"""The `report` stage: reports/summary.md, throughput.csv and throughput.png from the metrics files, or the bench
table `make bench` prints. First in-process on a hand-made metrics tree, then as `omzoo report` on the fake
pipeline's repository (conftest.py `branches`, main checked out)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from pathlib import Path

import pytest
from cli_helpers import omzoo
from dvc_helpers import BASE, MODELS, sh

from omzoo import cli
from omzoo.core import paths
from omzoo.stages import report

ROOT = Path(__file__).resolve().parents[1]


def _args(*argv: str) -> argparse.Namespace:
    return cli.verb_parser("report")[1].parse_args(list(argv))


def _tree(root: Path) -> Path:
    """One measured point (scnet50_v1d at bs 8) and a params.yaml asking for it and for bs 1."""
    body = {"bs": 8, "throughput_compute_ips": 50.0, "throughput_compute_ci_low": 48.0,
            "throughput_compute_ci_high": 53.0, "throughput_e2e_ips": 45.0, "contended": 0,
            "e2e_ms": {"p50": 1.0, "p99": 2.0}}
    (root / paths.bench_metrics("scnet50_v1d", 8)).parent.mkdir(parents=True)
    (root / paths.bench_metrics("scnet50_v1d", 8)).write_text(json.dumps(body))
    params = (ROOT / "params.yaml").read_text()
    params = re.sub(r"(?ms)^models:\n.*?\n\n", "models:\n  scnet50_v1d: {checkpoint: \"\", pixels: bilinear224}\n\n",
                    params)
    (root / "params.yaml").write_text(re.sub(r"(?m)^batch_sizes: .*$", "batch_sizes: [1, 8]", params))
    return root / "params.yaml"


def test_the_stage_writes_summary_csv_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params, out = _tree(tmp_path), tmp_path / "reports"
    assert report.run(_args("--params", str(params), "--root", str(tmp_path), "--out", str(out))) == 0
    assert capsys.readouterr().out == f"report: 1 models, 1 throughput rows -> {out}/summary.md\n"
    summary = (out / "summary.md").read_text()
    assert "## SCNet-50 v1d (`scnet50_v1d`)" in summary
    assert re.search(r"\| 8 ★ +\| 50\.0 \[48\.0, 53\.0\] ", summary) and re.search(r"\| 1 +\| not measured ", summary)
    with (out / "throughput.csv").open() as f:
        (row,) = csv.DictReader(f)
    assert (row["config"], row["batch_size"], row["throughput_compute_ips"]) == ("scnet50_v1d-8-fp32", "8", "50.0")
    assert (out / "throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_the_bench_table_is_printed_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params, out = _tree(tmp_path), tmp_path / "reports"
    assert report.run(_args("--params", str(params), "--root", str(tmp_path), "--out", str(out),
                            "--bench-table", "8,1", "--model", "scnet*")) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| scnet50_v1d")]
    assert [ln.split("|")[2].strip() for ln in rows] == ["8", "1"] and "50.0 [48.0, 53.0]" in rows[0]
    assert not out.exists()


def test_bench_table_sizes_are_positive_integers() -> None:
    assert _args("--bench-table", "8").bench_table == [8]
    assert _args("--bench-table", "1, 8,32").bench_table == [1, 8, 32]
    for bad in ("", "0", "8,-1", "x"):
        with pytest.raises(SystemExit):  # argparse: a usage error, exit 2
            _args("--bench-table", bad)


@pytest.mark.pipeline
def test_report_summary(branches: tuple[Path, dict[str, str]]) -> None:
    path, env = branches
    text = (path / "reports" / "summary.md").read_text()
    assert text.count("Random weights: accuracy means nothing") >= 1 + len(MODELS)
    assert "## Provenance" in text
    measured_at = sh(path, env, "git", "rev-parse", "--short", f"{BASE}~1").stdout.strip()  # main's repro ran there
    assert re.fullmatch(r"[0-9a-f]{7,}", measured_at)
    for fact in ("onnxruntime=8.0 driver=570.1", "test cpu", "fp32", measured_at, "c0ffeec0ffeec0ff",
                 "d1a7a5e7d1a7a5e7", "[1, 8] in params; measured [1, 8]", "random, seed 0"):
        assert fact in text, fact
    scnet = text.split("(`scnet50_v1d`)")[1].split("## ")[0]
    ran = text.split("(`ran92_cifar10`)")[1]
    assert "310P img/s" in scnet and "T4 img/s" not in scnet and "310 img/s" not in scnet  # only what is published
    assert all(f"{p} img/s" in ran for p in ("310P", "310", "T4"))
    assert re.search(r"\| 8 ★ +\| 800\.0 ", scnet) and re.search(r"\| 8 ★ +\| 1600\.0 .*\| 0\.33 +\|", ran)
    assert (path / "reports" / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    with (path / "reports" / "throughput.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert not math.isnan(float(rows[0]["throughput_compute_ips"]))
    assert {r["config"] for r in rows} == {paths.key(m, bs) for m in MODELS for bs in (1, 8)}


@pytest.mark.pipeline
def test_bench_table(branches: tuple[Path, dict[str, str]]) -> None:
    """What `make bench BS=…` prints for this workspace (main)."""
    path, env = branches
    table = omzoo("report", "--bench-table", "8", "--model", "scnet*", cwd=path, env=env, ok=True).stdout
    assert "scnet50_v1d" in table and "ran92_cifar10" not in table
    # ours 800 img/s at bs8 (workspace = main), its rounds' interval and cv, against the 310P guide's 2094: ratio
    # 0.38; no T4 figure
    assert re.search(r"\| scnet50_v1d +\| 8 +\| 800\.0 \[7\d\d\.\d, 8\d\d\.\d\] +\| 0\.0\d\d +\| 720\.0 \[[\d., ]+\] +"
                     r"\| 10\.00 +\| 12\.00 +\| 2094 +\| 0\.38 +\| – ", table), table
    table = omzoo("report", "--bench-table", "1", cwd=path, env=env, ok=True).stdout
    assert "ran92_cifar10" in table and "713.4" in table  # published T4 at bs1
    r = omzoo("report", "--bench-table", "8", "--model", "resnet*", cwd=path, env=env)
    assert r.returncode == 2 and "no model in params.yaml matches 'resnet*'" in r.stderr
