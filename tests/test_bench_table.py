"""The table `make bench` prints (omzoo.results.bench_table): medians with their intervals, contended points
marked, failures named, the published figures beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rounds_helpers import bench_metrics

from omzoo.core.params import load_params
from omzoo.results.bench_table import bench_table, matching_models

ROOT = Path(__file__).resolve().parents[1]


def test_bench_table_marks_contended_and_failed_points(tmp_path: Path) -> None:
    for m, body in (("scnet50_v1d", bench_metrics(50.0, contended=1)), ("tresnet_m", {"bs": 8, "failed": 1})):
        (tmp_path / "metrics" / "bench").mkdir(parents=True, exist_ok=True)
        (tmp_path / "metrics" / "bench" / f"{m}-8-fp32.json").write_text(json.dumps(body))
    table = bench_table(load_params(ROOT / "params.yaml"), tmp_path, [8], "*")
    assert "50.0 [48.0, 53.0] †" in table and "contended" in table.split("\n\n")[-1]
    assert "failed: out of memory" in table and "not measured" in table  # seresnext has no file at all
    assert "| 2094 " in table  # the published 310P figure for SCNet at bs 8
    quiet = bench_table(load_params(ROOT / "params.yaml"), tmp_path, [8], "tresnet*")
    assert "contended" not in quiet and quiet.count("\n") == 2  # header, rule, one row; no note


def test_the_model_glob_must_match_a_model() -> None:
    params = load_params(ROOT / "params.yaml")
    assert matching_models(params, "*") == list(params.models)
    assert matching_models(params, "scnet*") == ["scnet50_v1d"]
    with pytest.raises(ValueError, match=r"^no model in params\.yaml matches 'resnet\*' \(have: ") as e:
        matching_models(params, "resnet*")
    assert str(e.value).endswith(f"(have: {', '.join(params.models)})")
