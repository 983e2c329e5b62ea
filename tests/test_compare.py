"""`omzoo compare`: speed verdicts over benchmark rounds, exact per-image accuracy changes, the gate.

Each part has its own tests (test_rules, test_diffs, test_verdicts, test_accuracy, test_gate, test_compare_markdown,
test_comparison); here the verb runs on the fake pipeline's git+DVC repository (dvc_helpers.py, the `branches`
fixture of conftest.py): main; cann-8.1, 25 % faster with the same predictions; slow, 2x slower with three changed
predictions; busy, the same speed but one point contended, one out of memory and other data.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
from cli_helpers import omzoo
from dvc_helpers import BASE, BUSY, FLIPPED, HEAD, MODELS, SLOW, add_problem_branches, sh

from omzoo import cli
from omzoo.core import metrics
from omzoo.stages import compare

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "omzoo"
#: every module of the compare code: the verb and the results modules it is built from
COMPARE_CODE = ["stages/compare.py"] + [f"results/{m}.py" for m in ("rules", "diffs", "verdicts", "accuracy", "gate",
                                                                       "compare_markdown", "comparison",
                                                                       "fingerprints")]
Compared = tuple[subprocess.CompletedProcess, dict]  # `omzoo compare` result and its compare.json


def rows_by(rows: list[dict], **match: object) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


# ------------------------------------------------------------------------------------------ unit (fast)


def test_compared_metrics_come_from_the_schema() -> None:
    assert _results_imports() <= set(COMPARE_CODE) | {"results/plots.py", "results/revisions.py"}  # the list is whole
    acted_on = {metrics.FAILED, metrics.CONTENDED, metrics.RANDOM_WEIGHTS, metrics.N_IMAGES}
    for name in COMPARE_CODE:
        source = (SRC / name).read_text()
        for m in metrics.SCHEMA:  # what compare judges or acts on reaches it through the schema, never as a literal
            if m.compared or m.better or m.name in acted_on:
                assert f'"{m.name}"' not in source and f"'{m.name}'" not in source, (name, m.name)


def _results_imports() -> set[str]:
    """The omzoo.results modules the compare code imports, as paths under src/omzoo."""
    found = set()
    for name in COMPARE_CODE:
        for node in ast.walk(ast.parse((SRC / name).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("omzoo.results"):
                modules = [f"{node.module}.{a.name}" for a in node.names] if node.module == "omzoo.results" else \
                    [node.module]
                found |= {m.removeprefix("omzoo.").replace(".", "/") + ".py" for m in modules}
    return found


def test_compare_without_a_base_is_a_usage_error() -> None:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    with pytest.raises(ValueError, match=r"^usage: omzoo compare BASE \[HEAD\]"):
        compare.run(parser.parse_args([]))
    assert cli.VERBS["compare"] == "omzoo.stages.compare"


def test_make_compare_maps_onto_the_verb() -> None:
    def line(*args: str) -> str:
        out = subprocess.run(["make", "-n", "compare", *args], cwd=ROOT, capture_output=True, text=True).stdout
        return next(ln for ln in out.splitlines() if "omzoo compare" in ln).split(None, 1)[1].strip()

    assert line("BASE=main", "HEAD=ort-1.31", "FAIL_ON=regression") == \
        "compare main ort-1.31 --fail-on regression"
    assert line("BASE=main") == "compare main"  # the one-revision form: main against the workspace


# ------------------------------------------------------------------------------------ on a real repo


@pytest.fixture(scope="module")
def repo(branches: tuple[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    """The shared repository, plus the slow and busy branches (main checked out again)."""
    path, env = branches
    add_problem_branches(path, env)
    return path, env


def run_compare(repo: tuple[Path, dict[str, str]], out: Path, *args: str, rc: int = 0) -> Compared:
    path, env = repo
    r = omzoo("compare", *args, "--out", out, cwd=path, env=env)
    assert r.returncode == rc, r.stderr
    assert (out / "compare.md").read_text() == r.stdout
    return r, json.loads((out / "compare.json").read_text())


@pytest.mark.pipeline
def test_faster_toolkit_improves_every_number_with_the_same_predictions(repo, tmp_path: Path) -> None:
    r, data = run_compare(repo, tmp_path, BASE, HEAD, "--fail-on", "regression", "--no-plots")
    assert "omzoo compare: warning" not in r.stderr, r.stderr
    assert len(data["verdicts"]) == 4 * 2 * len(MODELS)
    assert {v["verdict"] for v in data["verdicts"]} == {"improved"}
    for v in data["verdicts"]:
        assert v["ratio"] == pytest.approx(1.25 if v["better"] == "higher" else 0.8)
        assert v["ci_low"] < v["ratio"] < v["ci_high"] and not v["ci_low"] <= 1 <= v["ci_high"]
    assert data["gate"] == {"fail_on": "regression", "passed": True, "reasons": []}
    assert [(a["model"], a["status"], a["n_changed_top1"]) for a in data["accuracy"]] == \
        [(m, "identical", 0) for m in sorted(MODELS)]
    text = r.stdout
    summary = text.split("\n\n")[1]
    assert summary == ("**Summary.** 0 regressed, 16 improved, 0 unchanged, 0 inconclusive (of 16 speed numbers); "
                       "accuracy: identical for ran92_cifar10, scnet50_v1d on 16 images each.")
    assert "**Gate** (`--fail-on regression`): passed." in text
    assert text.index("### Verdicts") < text.index("### Accuracy") < text.index("### Numbers") \
        < text.index("### Parameters")
    assert re.search(r"\| improved +\| scnet50_v1d +\| 8 +\| throughput_compute_ips \(img/s ↑\) +\| 800\.0 +\| "
                     r"1000\.0 +\| 1\.250 +\| \[1\.2\d\d, 1\.2\d\d\] 88% +\| excludes 1: at least 2\d\.\d%",
                     text)
    # the numbers, as before: every compute throughput +25 %, every p99 20 % lower, accuracy unchanged
    tput = [ln for ln in text.splitlines() if ln.count("|") == 8 and "| throughput_compute_ips " in ln]
    assert len(tput) == 2 * len(MODELS) and all("+25.0 %" in ln for ln in tput), tput
    assert all("-20.0 %" in ln for ln in text.splitlines() if ln.count("|") == 8 and "| e2e_ms.p99 " in ln)
    assert re.search(r"\| params\.yaml +\| toolkit\.version +\| 8\.0 +\| 8\.1 ", text)
    assert {p["param"] for p in data["params"]} == {"toolkit.version", "toolkit.speedup"}
    compute = rows_by(data["numbers"], metric="throughput_compute_ips")
    assert len(compute) == 4 and all(r["pct"] == pytest.approx(25.0) for r in compute)
    assert data["rules"] == {"min_effect": 0.03, "max_accuracy_drop": 0.0, "min_rounds": 5, "show_images": 10,
                             "level": 0.95, "from": f"{HEAD}:params.yaml"}


@pytest.mark.pipeline
def test_a_a_against_the_workspace_passes_the_gate(repo, tmp_path: Path) -> None:
    """`omzoo compare main` (what `make compare BASE=main` runs): main against its own workspace, the same rounds."""
    r, data = run_compare(repo, tmp_path, BASE, "--fail-on", "regression", "--no-plots")
    assert data["head"] == "workspace" and {v["verdict"] for v in data["verdicts"]} == {"unchanged"}
    assert all(v["ratio"] == 1.0 for v in data["verdicts"])
    assert {a["status"] for a in data["accuracy"]} == {"identical"}
    assert "No speed number regressed, improved or was inconclusive." in r.stdout


@pytest.mark.pipeline
def test_slowdown_and_changed_predictions_fail_the_gate(repo, tmp_path: Path) -> None:
    r, data = run_compare(repo, tmp_path, BASE, SLOW, "--fail-on", "regression", "--no-plots", rc=1)
    assert {v["verdict"] for v in data["verdicts"]} == {"regressed"}
    flipped = rows_by(data["accuracy"], model=MODELS[0])[0]
    names = [f"img_{i:04d}.jpg" for i in FLIPPED]
    assert (flipped["status"], flipped["n_images"], flipped["n_changed_top1"], flipped["right_to_wrong"],
            flipped["wrong_to_right"]) == ("changed", 16, 3, 2, 1)
    assert [c["name"] for c in flipped["changed"]] == names
    assert flipped["topk"]["top1"] == {"old": 75.0, "new": 68.75} and flipped["top1_drop"] == 6.25
    assert rows_by(data["accuracy"], model=MODELS[1])[0]["status"] == "identical"
    assert not data["gate"]["passed"] and len(data["gate"]["reasons"]) == 16 + 1
    gate_line = ("16 speed numbers regressed; scnet50_v1d top-1 fell 6.25 points (75.00 → 68.75 %), more than "
                 "compare.max_accuracy_drop 0")
    assert f"**Gate** (`--fail-on regression`): **failed**: {gate_line}." in r.stdout
    assert r.stderr.strip().endswith(f"omzoo compare: gate failed: {gate_line}")
    assert "scnet50_v1d top-1 75.00 → 68.75 % (3 of 16 images changed top-1: 2 right→wrong, 1 wrong→right)" \
        in r.stdout
    assert "- scnet50_v1d, changed top-1: `img_0001.jpg` 1→3 (label 1), `img_0003.jpg` 4→3 (label 3), " \
        "`img_0006.jpg` 6→8 (label 6)" in r.stdout
    table = r.stdout.split("### Verdicts")[1].split("###")[0]
    assert table.index("| regressed ") < table.index("| scnet50_v1d")  # rows of the verdict table, regressions first
    r, _ = run_compare(repo, tmp_path / "no-gate", BASE, SLOW, "--no-plots")  # without --fail-on: a report, exit 0
    assert "**Gate**" not in r.stdout


@pytest.mark.pipeline
def test_contended_failed_and_other_data_are_inconclusive_and_pass_the_gate(repo, tmp_path: Path) -> None:
    r, data = run_compare(repo, tmp_path, BASE, BUSY, "--fail-on", "regression", "--no-plots")
    verdicts = data["verdicts"]
    contended = rows_by(verdicts, model=MODELS[0], bs=8)
    assert {(v["verdict"], v["reason"]) for v in contended} == {("inconclusive", "head contended")}
    assert all(v["ratio"] == 1.0 for v in contended)  # the same rounds: only the flag makes it inconclusive
    failed = rows_by(verdicts, model=MODELS[1], bs=1)
    assert {(v["verdict"], v["reason"], v["new"]) for v in failed} == \
        {("inconclusive", "head failed (out of memory)", None)}
    rest = [v for v in verdicts if v not in contended + failed]
    assert len(rest) == 8 and {v["verdict"] for v in rest} == {"unchanged"}  # A/A: the same seeded samples
    for a in data["accuracy"]:
        assert a["status"] == "different data" and a["top1_drop"] is None
        assert a["note"] == (f"not compared: {BASE} ran on dataset manifest d1a7a5e7d1a7…, {BUSY} on "
                             "da7a0002da7a… (different data)")
    assert data["gate"] == {"fail_on": "regression", "passed": True, "reasons": []}
    assert "0 regressed, 0 improved, 8 unchanged, 8 inconclusive" in r.stdout


@pytest.mark.pipeline
def test_predictions_out_of_reach_are_named_with_their_fetch(repo, tmp_path: Path) -> None:
    """A clone with no DVC cache and no remote: the verdicts still come from git; accuracy says what to fetch."""
    path, env = repo
    clone = tmp_path / "clone"
    sh(tmp_path, env, "git", "clone", "-q", str(path), str(clone))
    r, data = run_compare((clone, env), tmp_path / "out", BASE, SLOW, "--fail-on", "regression", "--no-plots", rc=1)
    assert {v["verdict"] for v in data["verdicts"]} == {"regressed"}
    targets = " ".join(f"models/infer/{m}" for m in sorted(MODELS))
    assert data["fetch"] == {rev: f"git checkout {rev} && dvc fetch {targets} && git checkout -"
                             for rev in (BASE, SLOW)}
    for a in data["accuracy"]:
        assert a["n_changed_top1"] is None and a["note"] == "" and set(a["unreadable"]) == {BASE, SLOW}
    assert rows_by(data["accuracy"], model=MODELS[1])[0]["status"] == "same top-k"
    assert f"- Per-image predictions at {SLOW} are in neither this DVC cache nor a remote reachable here: " \
        f"`{data['fetch'][SLOW]}` (after `dvc push` where {SLOW} ran, if no remote holds them)." in r.stdout
    assert "same top-1..5, per-image predictions not readable here for ran92_cifar10 on 16 images; " \
        "scnet50_v1d top-1 75.00 → 68.75 %, per-image predictions not readable here." in r.stdout
    assert data["gate"]["reasons"][-1].startswith("scnet50_v1d top-1 fell 6.25 points")  # from the eval metrics


@pytest.mark.pipeline
def test_heads_params_set_the_rules(repo, tmp_path: Path) -> None:
    """HEAD (here the workspace of a clone on slow) loosened its own rule: 2x slower is under its min_effect, and
    its top-1 drop (6.25 points) within its allowance, so the gate passes; the rule travels with the branch."""
    path, env = repo
    clone = tmp_path / "clone"
    sh(tmp_path, env, "git", "clone", "-q", "-b", SLOW, str(path), str(clone))
    with (clone / "params.yaml").open("a") as f:
        f.write("compare: {min_effect: 1.5, max_accuracy_drop: 7}\n")  # latency doubled: an effect of 100 %
    r, data = run_compare((clone, env), tmp_path / "out", BASE, "--fail-on", "regression", "--no-plots")
    assert data["rules"]["from"] == "workspace:params.yaml" and data["rules"]["max_accuracy_drop"] == 7
    assert {v["verdict"] for v in data["verdicts"]} == {"unchanged"}
    assert all(re.search(r": at least \d+\.\d%, < min_effect 150\.0%$", v["reason"]) for v in data["verdicts"])
    assert data["gate"]["passed"] and "**Gate** (`--fail-on regression`): passed." in r.stdout


@pytest.mark.pipeline
def test_unknown_revision_is_a_clear_error(repo, tmp_path: Path) -> None:
    path, env = repo
    r = omzoo("compare", BASE, "cann-9.9", "--out", tmp_path, cwd=path, env=env)
    assert r.returncode == 2
    assert "unknown revision 'cann-9.9'" in r.stderr and BASE in r.stderr and "Traceback" not in r.stderr


@pytest.mark.pipeline
def test_revision_without_metrics_is_reported(repo, tmp_path: Path) -> None:
    """DVC exits 0 when a revision's metrics fail to load (docs/dvc.md §5): compare says so, from the content."""
    r, data = run_compare(repo, tmp_path, f"{BASE}~1", BASE, "--fail-on", "regression", "--no-plots")
    assert f"warning: no omzoo metrics at '{BASE}~1'" in r.stderr and "### Warnings" in r.stdout
    assert data["warnings"] and all(row["old"] is None and row["new"] is not None for row in data["numbers"])
    assert {(v["verdict"], v["reason"]) for v in data["verdicts"]} == {("inconclusive", "base not measured")}
    assert {a["status"] for a in data["accuracy"]} == {"not evaluated"}
