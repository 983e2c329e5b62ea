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
    files[paths.bench_metrics("m", 1, "int8")] = {"throughput_compute_ips": 90.0}
    files[paths.eval_metrics("m", "int8")] = {"agreement_top1": 95.0}
    for path, body in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(json.dumps(body))
    data = collect(tmp_path, Params({"models": {"m": {}, "n": {}}, "batch_sizes": [1, 8]}, Path("params.yaml")))
    m = {"eval": {"top1": 75.0}, "eval_info": {},
         "bench": {1: ({}, {}), 8: ({"throughput_compute_ips": 50.0}, {"bs": 8})}}
    n = {"eval": {}, "eval_info": {}, "bench": {1: ({}, {}), 8: ({}, {})}}
    assert data == {"m": {**m, "precisions": {"fp32": m}}, "n": {**n, "precisions": {"fp32": n}}}  # int8 not asked for
    both = collect(tmp_path, Params({"models": {"m": {}}, "batch_sizes": [1], "precisions": ["fp32", "int8"]},
                                    Path("params.yaml")))["m"]["precisions"]
    assert both["int8"]["eval"] == {"agreement_top1": 95.0}
    assert both["int8"]["bench"][1][0]["throughput_compute_ips"] == 90.0
    assert read_json(tmp_path / "absent.json") == {}


def test_a_bad_metric_value_is_named_with_its_file(tmp_path: Path) -> None:
    import pytest

    path = tmp_path / "m.json"
    path.write_text(json.dumps({"bs": 1, "throughput_compute_ips": "fast"}))
    assert read_json(path)["throughput_compute_ips"] == "fast"  # an info file: not a metrics file
    with pytest.raises(ValueError, match=f"{path}: throughput_compute_ips is 'fast'"):
        read_json(path, "bench")
