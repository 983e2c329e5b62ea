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
from dvc_helpers import pipeline_env, sh, tiny_checkout

from omzoo.core.metrics import TOP1, WRITTEN_DECIMALS

pytestmark = [pytest.mark.slow, pytest.mark.pipeline]

MODEL = "ran92_cifar10"
OLD = "1.31.1"


def make(repo: Path, *target: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in pipeline_env().items() if k != "VIRTUAL_ENV"}
    return sh(repo, env, "make", *target, ok=ok)


def test_two_onnxruntime_versions_compared_end_to_end(tmp_path: Path) -> None:
    repo, env = tmp_path / "repo", pipeline_env()
    tiny_checkout(repo, env, MODEL, bench={"warmup_iters": 2, "warmup_s": 0.1, "min_iters": 3, "min_s": 0.2,
                                           "rounds": 6})
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
    assert {p["param"] for p in data["params"]} >= {"toolkit.version"}
    (acc,) = data["accuracy"]
    assert acc["status"] in ("identical", "changed") and acc["n_images"] == 64
    # the gate's rule (omzoo.results.gate), worked out here: it fails on a regressed speed number, on a top-1 drop
    # beyond BASE's compare.max_accuracy_drop (a drop below the metrics files' rounding is none), on every number
    # whose evidence is spoiled (a contended side on this shared machine, too few rounds), and when no number at
    # all could be judged
    allowance = yaml.safe_load(sh(repo, env, "git", "show", "main:params.yaml").stdout)["compare"][
        "max_accuracy_drop"]
    top1 = acc["topk"][TOP1]
    dropped = top1["old"] - top1["new"] > allowance + 0.5 * 10.0 ** -WRITTEN_DECIMALS
    spoiled = [v for v in data["verdicts"] if v["evidence"]]
    assert all(v["verdict"] == "inconclusive" and "metrics/" not in v["evidence"] for v in spoiled)  # none broken
    nothing = all(v["verdict"] == "inconclusive" for v in data["verdicts"])
    fails = bool(regressed) or dropped or bool(spoiled) or nothing
    gate = data["gate"]
    assert gate["passed"] is not fails and acc["problem"] == "", gate
    assert len(gate["reasons"]) == len(regressed) + dropped + len(spoiled) + nothing, gate
    for v in regressed:
        assert any(g.startswith(f"{v['model']} bs{v['bs']} {v['metric']} regressed") for g in gate["reasons"])
    assert r.returncode == (2 if fails else 0), r.stdout[-2000:]  # make turns omzoo's exit 1 into 2
    assert "## omzoo compare: main → ort-1.31" in (repo / "reports/compare/compare.md").read_text()


def test_another_installed_toolkit_re_runs_compile_and_what_follows_it(tmp_path: Path) -> None:
    """The issue's user paths. `pip install onnxruntime==1.31.1` into the venv by hand: the next make target's
    `make setup` sees the venv differ from constraints.txt and puts the pin back, so nothing re-runs and no result
    names a runtime the branch does not pin. constraints.txt pinning 1.31.1 (toolkit.version left empty): `make
    bench BS=1` installs it, the toolkit stage sees it, compile and bench at bs 1 run again (nothing upstream) and
    their info names 1.31.1; the report refuses the half-measured branch until `make repro` measured the rest."""
    repo, env = tmp_path / "repo", pipeline_env()
    tiny_checkout(repo, env, MODEL, bench={"warmup_iters": 1, "warmup_s": 0.05, "min_iters": 2, "min_s": 0.05,
                                           "rounds": 3})
    constraints = repo / "constraints.txt"
    pinned = re.search(r"^onnxruntime==(\S+)", constraints.read_text(), re.M).group(1)
    make(repo, "setup")
    make(repo, "doctor")
    make(repo, "repro")

    def installed() -> str:
        return sh(repo, env, str(repo / ".venv/bin/python"), "-c",
                  "import onnxruntime; print(onnxruntime.__version__)").stdout.strip()

    def ran(out: str) -> list[str]:
        return sorted(re.findall(r"Running stage '([^']+)'", out))

    sh(repo, env, str(repo / ".venv/bin/uv"), "pip", "install", "-q", "--python", str(repo / ".venv/bin/python"),
       f"onnxruntime=={OLD}")
    out = make(repo, "bench", "BS=1", f"MODEL={MODEL}").stdout
    assert f"differs from constraints.txt (onnxruntime {OLD} (pinned {pinned}))" in out and installed() == pinned
    assert ran(out) == ["toolkit"], out[-3000:]

    constraints.write_text(re.sub(r"(?m)^onnxruntime==\S+$", f"onnxruntime=={OLD}", constraints.read_text()))
    out = make(repo, "bench", "BS=1", f"MODEL={MODEL}").stdout
    assert installed() == OLD and ran(out) == [f"bench@{MODEL}-1", f"compile@{MODEL}-1", "toolkit"], out[-3000:]
    assert json.loads((repo / f"metrics/info/bench/{MODEL}-1.json").read_text())["runtime_version"] == OLD
    # what the report stage runs, by hand: bs 4 and the accuracy are still the old toolkit's
    report = sh(repo, env, str(repo / ".venv/bin/omzoo"), "report", "--out", "reports", ok=False)
    assert report.returncode == 2 and "toolkit fingerprints in one branch" in report.stderr
    out = make(repo, "repro").stdout
    assert ran(out) == sorted(["toolkit", f"compile@{MODEL}-4", f"infer@{MODEL}", f"evaluate@{MODEL}",
                               f"bench@{MODEL}-4", "report"]), out[-3000:]
    toolkit = json.loads((repo / "metrics/toolkit.json").read_text())
    assert toolkit["toolkit"]["runtime_version"] == OLD
    for name in (f"bench/{MODEL}-1", f"bench/{MODEL}-4", f"eval/{MODEL}"):
        got = json.loads((repo / f"metrics/info/{name}.json").read_text())
        assert got["toolkit_fingerprint"] == toolkit["toolkit_fingerprint"] and got.get("runtime_version", OLD) == OLD
