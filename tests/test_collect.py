"""What the report reads (omzoo.results.collect): the files of the points params.yaml asks for, missing ones as {}."""

from __future__ import annotations

import json
from pathlib import Path

from omzoo.core import paths
from omzoo.core.params import Params
from omzoo.results.collect import collect, read_json


def test_collect_reads_the_declared_points_only(tmp_path: Path) -> None:
    files = {paths.bench_metrics("m", 8): {"throughput_compute_ips": 50.0}, paths.bench_info("m", 8): {"bs": 8},
             paths.bench_metrics("m", 32): {"stale": 1},  # a shrunk sweep's leftover: not in params
             paths.eval_metrics("m"): {"top1": 75.0}, paths.eval_info("other"): {"dataset": "x"}}
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(body))
    data = collect(tmp_path, Params({"models": {"m": {}, "n": {}}, "batch_sizes": [1, 8]}, Path("params.yaml")))
    assert data == {
        "m": {"eval": {"top1": 75.0}, "eval_info": {},
              "bench": {1: ({}, {}), 8: ({"throughput_compute_ips": 50.0}, {"bs": 8})}},
        "n": {"eval": {}, "eval_info": {}, "bench": {1: ({}, {}), 8: ({}, {})}}}
    assert read_json(tmp_path / "absent.json") == {}
