"""Comparing two toolkits for real, the README's walkthrough on a tiny pipeline: main on the pinned onnxruntime,
a branch `ort-1.31` pinning onnxruntime 1.31.1; `make setup && make repro` on each, then `make compare`.

Slow (two virtual environments, two pipelines) and it needs the package index for onnxruntime 1.31.1: run with
`make test-all`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc_helpers import copy_checkout, pipeline_env, sh

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]

MODEL = "ran92_cifar10"
OLD = "1.31.1"


def _tiny(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"] = {MODEL: params["models"][MODEL]}
    params["batch_sizes"] = [1, 4]
    params["infer"]["batch_size"] = 4
    params["bench"].update(warmup_iters=2, warmup_s=0.1, min_iters=3, min_s=0.2, rounds=6)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make(repo: Path, *target: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in pipeline_env().items() if k != "VIRTUAL_ENV"}
    return sh(repo, env, "make", *target, ok=ok)


def test_two_onnxruntime_versions_compared_end_to_end(tmp_path: Path) -> None:
    repo, env = tmp_path / "repo", pipeline_env()
    copy_checkout(repo)
    _tiny(repo)
    sh(repo, env, "git", "init", "-q", "-b", "main")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", "tiny omzoo")
    new = re.search(r"^onnxruntime==(\S+)", (repo / "constraints.txt").read_text(), re.M).group(1)
    for branch, version in (("main", new), ("ort-1.31", OLD)):
        if branch != "main":
            sh(repo, env, "git", "checkout", "-q", "-b", branch)
            constraints = repo / "constraints.txt"
            constraints.write_text(re.sub(r"^onnxruntime==\S+", f"onnxruntime=={OLD}", constraints.read_text(),
                                          flags=re.M))
            params = repo / "params.yaml"
            params.write_text(re.sub(r'^  version: .*$', '  version: "1.31"', params.read_text(), count=1, flags=re.M))
        make(repo, "setup")
        make(repo, "repro")
        info = json.loads((repo / f"metrics/info/bench/{MODEL}-4.json").read_text())
        assert info["runtime"] == "onnxruntime" and info["runtime_version"] == version
        sh(repo, env, "git", "add", "-A")
        sh(repo, env, "git", "commit", "-qm", f"results: onnxruntime {version}")
    r = make(repo, "compare", "BASE=main", "HEAD=ort-1.31", "FAIL_ON=regression", ok=False)
    data = json.loads((repo / "reports/compare/compare.json").read_text())
    regressed = [v for v in data["verdicts"] if v["verdict"] == "regressed"]
    assert len(data["verdicts"]) == 4 * 2 and all(v["ratio"] for v in data["verdicts"])
    assert r.returncode == (2 if regressed or not data["gate"]["passed"] else 0), r.stdout[-2000:]  # make: 1 → 2
    assert {p["param"] for p in data["params"]} >= {"toolkit.version"}
    (acc,) = data["accuracy"]
    assert acc["status"] in ("identical", "changed") and acc["n_images"] == 64
    assert "## omzoo compare: main → ort-1.31" in (repo / "reports/compare/compare.md").read_text()
