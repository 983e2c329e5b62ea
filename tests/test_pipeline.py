"""End to end: the real dvc.yaml on a copy of the repository, tiny settings, two branches.

This is the newcomer's path (`make repro` on the embedded sample) shrunk to one model so that it fits the
default test run: every stage runs, every output and metric is checked, a second `dvc repro` does nothing,
and a toolchain parameter changed on a second branch shows up in `dvc metrics diff`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc_helpers import pipeline_env, tiny_checkout
from dvc_helpers import sh as run

MODEL = "ran92_cifar10"

pytestmark = pytest.mark.pipeline


def sh(cwd: Path, *cmd: str) -> str:
    """The command's stdout and stderr; it must succeed."""
    r = run(cwd, pipeline_env(), *cmd)
    return r.stdout + r.stderr


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _leaves(obj: object) -> list[object]:
    return [x for v in obj.values() for x in _leaves(v)] if isinstance(obj, dict) else [obj]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("omzoo-repo")
    tiny_checkout(d, pipeline_env(), MODEL, onnxruntime={"threads": 2},
                  bench={"warmup_iters": 2, "warmup_s": 0.05, "min_iters": 3, "min_s": 0.1, "max_s": 20.0, "seed": 0,
                         "rounds": 3, "max_retries": 2, "retry_budget_s": 5.0})
    out = sh(d, "dvc", "repro", "--no-run-cache")
    (d / "first-repro.log").write_text(out)
    sh(d, "git", "add", "-A")
    sh(d, "git", "commit", "-qm", "results")
    return d


def test_every_stage_ran_and_wrote_its_outputs(repo: Path) -> None:
    log = (repo / "first-repro.log").read_text()
    for stage in ["toolkit", "sample-data", f"weights@{MODEL}", "preprocess@cifar32", "preprocess@bilinear224",
                  f"export@{MODEL}", f"simplify@{MODEL}", f"compile@{MODEL}-1-fp32", f"compile@{MODEL}-4-fp32",
                  f"infer@{MODEL}", f"evaluate@{MODEL}", f"bench@{MODEL}-1-fp32", f"bench@{MODEL}-4-fp32", "report"]:
        assert f"Running stage '{stage}'" in log
    manifest = _json(repo / "data/processed/cifar32/manifest.json")
    assert manifest["count"] == manifest["dataset_size"] == 64 and manifest["n_skipped"] == 0
    assert _json(repo / "data/processed/bilinear224/manifest.json")["count"] == 32
    assert (repo / f"models/onnx/{MODEL}.sim.onnx").is_file()
    for bs in (1, 4):
        assert _json(repo / f"models/compiled/{MODEL}/{MODEL}-{bs}-fp32/meta.json")["batch_size"] == bs
    import numpy as np

    logits = np.load(repo / f"models/infer/{MODEL}/fp32/logits.npy")
    assert logits.shape == (64, 10) and logits.dtype == np.float32


def test_metrics_are_numbers_and_marked_random(repo: Path) -> None:
    ev = _json(repo / f"metrics/eval/{MODEL}/fp32.json")
    assert ev["n_images"] == 64 and ev["random_weights"] == 1 and "pass" not in ev
    assert 0 <= ev["top1"] <= ev["top5"] <= 100
    assert ev["fidelity_max_abs_diff"] < 1e-3 and ev["fidelity_top1_agreement"] == 1.0
    for bs in (1, 4):
        b = _json(repo / f"metrics/bench/{MODEL}-{bs}-fp32.json")
        assert b["bs"] == bs and b["throughput_compute_ips"] > 0 and b["iters"] >= 9 and b["capped"] == 0
        assert b["rounds"] == 3 and b["throughput_compute_ci_low"] <= b["throughput_compute_ips"]
        rounds = _json(repo / f"metrics/rounds/{MODEL}-{bs}-fp32.json")
        assert len(rounds["samples"]["throughput_compute_ips"]) == 3 and rounds["model"] == MODEL
        assert b["e2e_ms"]["min"] <= b["e2e_ms"]["p50"] <= b["e2e_ms"]["p99"] <= b["e2e_ms"]["max"]
        for path in (repo / f"metrics/bench/{MODEL}-{bs}-fp32.json", repo / f"metrics/eval/{MODEL}/fp32.json"):
            assert all(isinstance(v, int | float) for v in _leaves(_json(path))), f"non-numbers in {path}"
        info = _json(repo / f"metrics/info/bench/{MODEL}-{bs}-fp32.json")
        assert "order statistics" in info["interval"]
        assert info["backend"] == "onnxruntime" and info["runtime"] == "onnxruntime" and info["runtime_version"]
    summary = (repo / "reports/summary.md").read_text()
    assert "Random weights" in summary and "310P img/s" in summary
    assert (repo / "reports/throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_second_repro_does_nothing(repo: Path) -> None:
    """Only the toolkit stage runs (it always does, in well under a second) and, the toolkit unchanged, it leaves
    its file as it was, so nothing after it runs and dvc.lock stays."""
    toolkit, lock = (repo / "metrics/toolkit.json").read_bytes(), (repo / "dvc.lock").read_bytes()
    out = sh(repo, "dvc", "repro", "--no-run-cache")
    assert re.findall(r"Running stage '([^']+)'", out) == ["toolkit"], out
    assert "(unchanged)" in out
    assert (repo / "metrics/toolkit.json").read_bytes() == toolkit and (repo / "dvc.lock").read_bytes() == lock
    for bs in (1, 4):  # every result carries the fingerprint the toolkit stage recorded
        assert _json(repo / f"metrics/info/bench/{MODEL}-{bs}-fp32.json")["toolkit_fingerprint"] == \
            _json(repo / "metrics/toolkit.json")["toolkit_fingerprint"]
    assert _json(repo / f"metrics/info/eval/{MODEL}/fp32.json")["toolkit_fingerprint"] == \
        _json(repo / "metrics/toolkit.json")["toolkit_fingerprint"]


def test_changed_toolchain_parameter_shows_in_metrics_diff(repo: Path) -> None:
    sh(repo, "git", "checkout", "-q", "-b", "ort-1thread")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["onnxruntime"]["threads"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = sh(repo, "dvc", "repro", "--no-run-cache")
    assert f"Running stage 'bench@{MODEL}-4-fp32'" in out and "Running stage 'preprocess" not in out
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "one ORT thread")
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "--json", "--all", "main", "ort-1thread"))
    bench = diff[f"metrics/bench/{MODEL}-4-fp32.json"]
    for side, rev in (("old", "main"), ("new", "ort-1thread")):  # DVC shows each side's median and its interval
        committed = json.loads(sh(repo, "git", "show", f"{rev}:metrics/bench/{MODEL}-4-fp32.json"))
        assert bench["throughput_compute_ips"][side] == committed["throughput_compute_ips"]
        assert bench["throughput_compute_ci_low"][side] <= bench["throughput_compute_ips"][side] \
            <= bench["throughput_compute_ci_high"][side]
        assert bench["rounds"][side] == 3
    assert diff.get(f"metrics/eval/{MODEL}/fp32.json", {}).get("top1", {}).get("diff", 0) == 0  # accuracy unchanged
    params_diff = json.loads(sh(repo, "dvc", "params", "diff", "--json", "main", "ort-1thread"))
    threads = params_diff["params.yaml"]["onnxruntime.threads"]
    assert (threads["old"], threads["new"]) == (2, 1)


def test_make_bench_with_a_new_batch_size(repo: Path) -> None:
    """`make bench BS=2` (BS not in params): added to params.yaml, measured through dvc, recorded, kept."""
    sh(repo, "git", "checkout", "-q", "main")
    out = sh(repo, sys.executable, "-m", "omzoo.cli", "sweep", "--bs", "2", "--model", MODEL)
    assert "added batch size(s) [2]" in out and f"Running stage 'bench@{MODEL}-2-fp32'" in out
    assert yaml.safe_load((repo / "params.yaml").read_text())["batch_sizes"] == [1, 2, 4]
    assert re.search(rf"\| {MODEL} +\| 2 +\| [0-9.]+ \[[0-9.]+, [0-9.]+\]", out), out[-2000:]
    b = _json(repo / f"metrics/bench/{MODEL}-2-fp32.json")
    assert b["bs"] == 2 and b["rounds"] == 3
    assert f"bench@{MODEL}-2-fp32" in (repo / "dvc.lock").read_text()
    again = sh(repo, "dvc", "repro", "--no-run-cache")  # a later repro keeps it and does not measure it again
    assert f"Running stage 'bench@{MODEL}-2-fp32'" not in again
    assert (repo / f"metrics/bench/{MODEL}-2-fp32.json").is_file()
    assert f"metrics/bench/{MODEL}-2-fp32.json" in sh(repo, "dvc", "metrics", "show", "--json")
    r = subprocess.run([sys.executable, "-m", "omzoo.cli", "sweep", "--bs", "0,x"], cwd=repo, env=pipeline_env(),
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "positive integer" in r.stderr
