"""`omzoo abtest` end to end on this checkout shrunk to RAN-92 (the real dvc.yaml, real ONNX Runtime): both sides are
made runnable in worktrees from their own pipeline, measured in pairs, judged by compare's rule, with accuracy in
the same run; the rules are BASE's; the branch's committed files stay untouched. Also the verb's argument checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import error_line, omzoo
from dvc_helpers import pipeline_env, sh, tiny_checkout

from omzoo.core import paths
from omzoo.core.io import owned
from omzoo.core.metrics import ROUND_METRICS

MODEL = "ran92_cifar10"
ROW = {"model", "bs", "metric", "old", "new", "ratio", "ci_low", "ci_high", "coverage", "verdict", "reason"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("abtest-repo")
    tiny_checkout(d, pipeline_env(), MODEL, onnxruntime={"threads": 2},
                  bench={"warmup_iters": 2, "warmup_s": 0.05, "min_iters": 3, "min_s": 0.05, "max_s": 5.0},
                  abtest={"min_pairs": 4, "look_every": 2, "max_pairs": 6, "max_s": 60.0})
    return d


@pytest.fixture(scope="module")
def run(repo: Path) -> tuple[Path, object]:
    out = repo / "reports" / "ab"
    r = omzoo("abtest", "main", "-S", "onnxruntime.threads=1", "-S", "abtest.min_effect=0.5", "--bs", "1",
              "--out", out, "--quiet", cwd=repo, env=pipeline_env())
    return out, r


def test_abtest_writes_paired_verdicts_and_accuracy(run: tuple[Path, object]) -> None:
    out, r = run
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((out / "compare.json").read_text())
    assert doc["method"] == "paired" and doc["base"] == "main" and doc["head"] == "workspace"
    assert doc["overrides"] == ["onnxruntime.threads=1", "abtest.min_effect=0.5"]
    rows = doc["verdicts"]
    assert [(j["model"], j["bs"], j["metric"]) for j in rows] == [(MODEL, 1, m) for m in ROUND_METRICS]
    for j in rows:
        assert set(j) >= ROW and j["verdict"] in ("improved", "regressed", "unchanged")
        assert j["ci_low"] <= j["ratio"] <= j["ci_high"] and 0 < j["coverage"] < 0.95  # 6 pairs cannot reach it
        assert "below the level" in j["reason"]
    (acc,) = doc["accuracy"]
    assert acc["model"] == MODEL and acc["n_images"] == 64 and acc["status"] in ("identical", "changed")
    assert acc["right_to_wrong"] is not None and acc["topk"]["top1"]["old"] is not None
    (point,) = json.loads((out / "pairs.json").read_text())["points"]
    assert 4 <= len(point["pairs"]) <= 6 and {p["first"] for p in point["pairs"]} <= {"base", "head"}
    assert point["sides"]["base"]["describe"]["threads"] == "intra_op=2 inter_op=1"
    assert point["sides"]["head"]["describe"]["threads"] == "intra_op=1 inter_op=1"  # HEAD's -S, BASE untouched
    md = (out / "compare.md").read_text()
    assert md.startswith("## omzoo abtest: main → workspace -S onnxruntime.threads=1")
    assert "**Summary.**" in md and "### Accuracy" in md


def test_the_rules_are_bases_and_a_looser_head_is_named_and_ignored(run: tuple[Path, object]) -> None:
    out, _ = run
    doc = json.loads((out / "compare.json").read_text())
    assert doc["rules"]["min_effect"] == 0.01 and doc["rules"]["from"] == "main:params.yaml"
    (note,) = [n for n in doc["rules"]["notes"] if "min_effect" in n]
    assert "0.5" in note and "ignored" in note
    assert "ignored" in (out / "compare.md").read_text()


def test_each_side_runs_in_its_own_marked_worktree_and_the_branch_stays_untouched(
        repo: Path, run: tuple[Path, object]) -> None:
    out, _ = run
    sides = json.loads((out / "compare.json").read_text())["sides"]
    roots = {s: Path(v["root"]) for s, v in sides.items()}
    assert roots["base"] != roots["head"] and all(r.parent == repo / ".omzoo" / "abtest" / "worktrees"
                                                  for r in roots.values())
    for root in roots.values():
        assert owned(root)
        assert (root / paths.compiled(MODEL, 1) / "meta.json").is_file()
    head_params = yaml.safe_load((roots["head"] / "params.yaml").read_text())
    assert head_params["onnxruntime"]["threads"] == 1
    assert (roots["base"] / "params.yaml").read_text() == (repo / "params.yaml").read_text()
    assert sh(repo, pipeline_env(), "git", "status", "--porcelain", "--untracked-files=no").stdout == ""
    assert not (repo / "metrics").exists()  # nothing of the branch's own results was written


def test_a_second_run_reuses_the_worktrees(repo: Path, run: tuple[Path, object]) -> None:
    out = repo / "reports" / "ab2"
    r = omzoo("abtest", "main", "-S", "abtest.min_effect=0.5", "-S", "onnxruntime.threads=1", "--bs", "1",
              "--out", out, "--quiet", "--fail-on", "inconclusive", cwd=repo, env=pipeline_env())
    assert r.returncode in (0, 1), r.stderr[-2000:]
    log = (out / "logs" / "setup.log").read_text()
    assert "worktree add" not in log and "dvc repro" not in log  # both sides' artefacts were already built
    gate = json.loads((out / "compare.json").read_text())["gate"]
    assert gate["fail_on"] == "inconclusive" and gate["passed"] == (r.returncode == 0)


def test_bad_arguments_are_one_line(repo: Path) -> None:
    r = omzoo("abtest", "workspace", cwd=repo, env=pipeline_env())
    assert r.returncode == 2 and "both the workspace" in error_line(r, "abtest")
    r = omzoo("abtest", "no-such-branch", cwd=repo, env=pipeline_env())
    assert r.returncode == 2 and "unknown revision 'no-such-branch'" in error_line(r, "abtest")
    r = omzoo("abtest", "main", "--model", "nothing*", "-S", "onnxruntime.threads=1", cwd=repo, env=pipeline_env())
    assert r.returncode == 2 and "no model matches --model 'nothing*'" in error_line(r, "abtest")
    r = omzoo("abtest", "main", "-S", "report.platforms=[]", cwd=repo, env=pipeline_env())
    assert r.returncode == 2 and "does not read `report.platforms`" in error_line(r, "abtest")


def test_make_abtest_passes_values_as_data_never_as_shell_code(repo: Path) -> None:
    """The README's CI line with a branch name that is valid git and hostile shell: no command runs, make fails."""
    venv = Path(sys.executable).parents[1]
    r = sh(repo, pipeline_env(), "make", "-s", "abtest", f"VENV={venv}", "BASE=main", "HEAD=x;{touch,pwned};echo",
           "FAIL_ON=regression", "MODEL=*'$(touch pwned2)'", ok=False)
    assert r.returncode != 0 and "unknown revision 'x;{touch,pwned};echo'" in r.stderr
    assert not (repo / "pwned").exists() and not (repo / "pwned2").exists()
