"""`omzoo compare`: speed verdicts over benchmark rounds, exact per-image accuracy changes, the gate.

Each part has its own tests (test_rules, test_diffs, test_verdicts, test_accuracy, test_gate, test_compare_markdown,
test_comparison); here the verb runs on the fake pipeline's git+DVC repository (dvc_helpers.py, the `branches`
fixture of conftest.py): main; cann-8.1, 25 % faster with the same predictions; slow, 2x slower with three changed
predictions; busy, the same speed but one point contended, one out of memory and other data; and, in clones,
branches with broken evidence or measured on another host.
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


def test_make_compare_maps_onto_the_verb(tmp_path: Path) -> None:
    """Each value reaches omzoo as one argument, whatever it holds (a stand-in omzoo prints what it got)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "omzoo").write_text('#!/bin/sh\nprintf "%s|" "$@"\n')
    (venv / "bin" / "omzoo").chmod(0o755)
    (venv / ".installed").touch()

    def line(*args: str) -> str:
        return subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), f"VENV={venv}", "-o", f"{venv}/.installed",
                               "compare", *args], cwd=tmp_path, capture_output=True, text=True).stdout.splitlines()[-1]

    assert line("BASE=main", "HEAD=ort-1.31", "FAIL_ON=regression") == "compare|main|ort-1.31|--fail-on|regression|"
    assert line("BASE=main") == "compare|main|"  # the one-revision form: main against the workspace
    assert line("BASE=main", "HEAD=x;{touch,pwned};echo") == "compare|main|x;{touch,pwned};echo|"
    assert line("BASE=$(shell touch pwned)") == "compare|$(shell touch pwned)|"
    assert not (tmp_path / "pwned").exists()


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
                     r"1000\.0 +\| 1\.250 +\| \[1\.2\d\d, 1\.2\d\d\] 88% +\| excludes 1: at least 1\d\.\d%",
                     text)
    # the numbers, as before: every compute throughput +25 %, every p99 20 % lower, accuracy unchanged
    tput = [ln for ln in text.splitlines() if ln.count("|") == 8 and "| throughput_compute_ips " in ln]
    assert len(tput) == 2 * len(MODELS) and all("+25.0 %" in ln for ln in tput), tput
    assert all("-20.0 %" in ln for ln in text.splitlines() if ln.count("|") == 8 and "| e2e_ms.p99 " in ln)
    assert re.search(r"\| params\.yaml +\| toolkit\.version +\| 8\.0 +\| 8\.1 ", text)
    assert {p["param"] for p in data["params"]} == {"toolkit.version", "toolkit.speedup"}
    compute = rows_by(data["numbers"], metric="throughput_compute_ips")
    assert len(compute) == 4 and all(r["pct"] == pytest.approx(25.0) for r in compute)
    assert all("with drift ±8%" in v["reason"] for v in data["verdicts"])  # 25 % faster: beyond any drift
    assert data["method"] == "blocked"
    assert data["rules"] == {"min_effect": 0.03, "drift": 0.08, "max_accuracy_drop": 0.0, "min_rounds": 5,
                             "show_images": 10, "level": 0.95, "from": f"{BASE}:params.yaml", "notes": []}


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
def test_contended_failed_and_other_data_are_inconclusive_and_fail_the_gate(repo, tmp_path: Path) -> None:
    """BUSY committed a contended point and one out of memory where main ran: never `regressed`, but no gate may
    pass on them either (the data must be measured again)."""
    r, data = run_compare(repo, tmp_path, BASE, BUSY, "--fail-on", "regression", "--no-plots", rc=1)
    verdicts = data["verdicts"]
    contended = rows_by(verdicts, model=MODELS[0], bs=8)
    assert {(v["verdict"], v["reason"], v["evidence"]) for v in contended} == \
        {("inconclusive", "head contended", "head contended")}
    assert all(v["ratio"] == 1.0 for v in contended)  # the same rounds: only the flag makes it inconclusive
    failed = rows_by(verdicts, model=MODELS[1], bs=1)
    oom = f"{BUSY}:metrics/bench/{MODELS[1]}-1-fp32.json: head failed (out of memory) where base ran"
    assert {(v["verdict"], v["reason"], v["new"]) for v in failed} == {("inconclusive", oom, None)}
    rest = [v for v in verdicts if v not in contended + failed]
    assert len(rest) == 8 and {v["verdict"] for v in rest} == {"unchanged"}  # A/A: the same seeded samples
    for a in data["accuracy"]:
        assert a["status"] == "different data" and a["top1_drop"] is None and a["problem"] == ""
        assert a["note"] == (f"not compared: {BASE} ran on dataset manifest d1a7a5e7d1a7…, {BUSY} on "
                             "da7a0002da7a… (different data)")
    assert data["gate"]["fail_on"] == "regression" and not data["gate"]["passed"]
    assert sorted(data["gate"]["reasons"]) == sorted(
        [f"{MODELS[0]} bs8 {v['metric']}: head contended" for v in contended] +
        [f"{MODELS[1]} bs1 {v['metric']}: {oom}" for v in failed])
    assert "0 regressed, 0 improved, 8 unchanged, 8 inconclusive" in r.stdout
    assert "omzoo compare: gate failed: " in r.stderr and "and 5 more" in r.stderr
    r, data = run_compare(repo, tmp_path / "inconclusive", BASE, BUSY, "--fail-on", "inconclusive", "--no-plots",
                          rc=1)  # the other data, too, is named at the stricter level
    assert [g for g in data["gate"]["reasons"] if "accuracy" in g] == [
        f"{a['model']} accuracy not compared: different data: {a['note']}" for a in data["accuracy"]]


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
def test_heads_params_cannot_loosen_the_rules(repo, tmp_path: Path) -> None:
    """HEAD (here the workspace of a clone on slow) loosened its own rules so that it would pass: 2x slower under
    its min_effect and within its drift, more rounds asked for than it has, its top-1 drop (6.25 points) within its
    allowance. The rules are BASE's: each loosened one is named as ignored, and the gate fails as it should."""
    path, env = repo
    clone = tmp_path / "clone"
    sh(tmp_path, env, "git", "clone", "-q", "-b", SLOW, str(path), str(clone))
    with (clone / "params.yaml").open("a") as f:
        f.write("compare: {min_effect: 1.5, max_accuracy_drop: 7, min_rounds: 1000, drift: 5}\n")
    r, data = run_compare((clone, env), tmp_path / "out", BASE, "--fail-on", "regression", "--no-plots", rc=1)
    assert data["rules"]["from"] == f"{BASE}:params.yaml"
    assert {k: data["rules"][k] for k in ("min_effect", "max_accuracy_drop", "min_rounds", "drift")} == \
        {"min_effect": 0.03, "max_accuracy_drop": 0.0, "min_rounds": 5, "drift": 0.08}
    notes = data["rules"]["notes"]
    assert sorted(n.split()[1] for n in notes) == ["compare.drift", "compare.max_accuracy_drop", "compare.min_effect",
                                                   "compare.min_rounds"]
    assert all(n.startswith("workspace's compare.") and n.endswith(f"ignored (the rules are the reference's, "
                                                                   f"{BASE})") for n in notes)
    assert "workspace's compare.min_rounds 1000 differs from main's 5: ignored" in r.stdout
    assert {v["verdict"] for v in data["verdicts"]} == {"regressed"}
    assert not data["gate"]["passed"] and "**Gate** (`--fail-on regression`): **failed**: 16 speed numbers " \
        "regressed; scnet50_v1d top-1 fell 6.25 points" in r.stdout
    assert "**Rules.** workspace's compare." in r.stdout


@pytest.mark.pipeline
def test_broken_evidence_at_head_fails_the_gate_naming_each_file(repo, tmp_path: Path) -> None:
    """A branch as fast and as accurate as main, but one of each kind of file broken in its commit: a corrupt
    metrics file, rounds without samples, a rounds file missing one metric's field, an info file deleted, an eval
    file deleted. `--fail-on regression` fails, and the reasons name every file."""
    path, env = repo
    clone = tmp_path / "clone"
    sh(tmp_path, env, "git", "clone", "-q", str(path), str(clone))
    sh(clone, env, "git", "checkout", "-q", "-b", "broken")
    m0, m1 = MODELS
    (clone / f"metrics/bench/{m0}-8-fp32.json").write_text('{"bs": 8, "throughput_compute_ips": 1')
    rounds = clone / f"metrics/rounds/{m0}-1-fp32.json"
    rounds.write_text(json.dumps({k: v for k, v in json.loads(rounds.read_text()).items() if k != "samples"}))
    rounds = clone / f"metrics/rounds/{m1}-8-fp32.json"
    body = json.loads(rounds.read_text())
    del body["samples"]["e2e_ms.p99"]
    rounds.write_text(json.dumps(body))
    (clone / f"metrics/info/bench/{m1}-1-fp32.json").unlink()
    (clone / f"metrics/eval/{m1}/fp32.json").unlink()
    sh(clone, env, "git", "commit", "-qam", "broken evidence")
    r, data = run_compare((clone, env), tmp_path / "out", BASE, "broken", "--fail-on", "regression", "--no-plots",
                          rc=1)
    reasons = data["gate"]["reasons"]
    named = {f"broken:metrics/bench/{m0}-8-fp32.json not valid JSON": 4,
             f"broken:metrics/rounds/{m0}-1-fp32.json has no per-round samples": 4,
             f"broken:metrics/rounds/{m1}-8-fp32.json has no rounds of e2e_ms.p99": 1,
             f"broken:metrics/info/bench/{m1}-1-fp32.json missing": 4, f"broken:metrics/eval/{m1}/fp32.json missing": 1}
    for what, n in named.items():
        assert sum(what in g for g in reasons) == n, (what, reasons)
    assert len(reasons) == sum(named.values())
    assert {v["verdict"] for v in data["verdicts"]} == {"inconclusive", "unchanged"}
    assert len(rows_by(data["verdicts"], verdict="unchanged")) == 3  # the rest of the third broken point
    assert r.stderr.strip().splitlines()[-1].startswith(f"omzoo compare: gate failed: {reasons[0]}")
    assert "and 11 more" in r.stderr
    assert all(w not in r.stdout for w in ("Traceback", "Error"))


@pytest.mark.pipeline
def test_results_from_another_host_get_no_verdict(repo, tmp_path: Path) -> None:
    """The same results, but every info file names another device: no speed verdict (the host was measured as
    much as the toolkit), so nothing could be judged, and both gate levels fail."""
    path, env = repo
    clone = tmp_path / "clone"
    sh(tmp_path, env, "git", "clone", "-q", "-b", SLOW, str(path), str(clone))  # 2x slower, but elsewhere
    sh(clone, env, "git", "checkout", "-q", "-b", "elsewhere")
    for info in (clone / "metrics/info/bench").glob("*.json"):
        info.write_text(json.dumps({**json.loads(info.read_text()), "device": "Ascend 310P3"}))
    sh(clone, env, "git", "commit", "-qam", "measured on another host")
    for level in ("inconclusive", "regression"):
        r, data = run_compare((clone, env), tmp_path / level, BASE, "elsewhere", "--fail-on", level, "--no-plots",
                              rc=1)
        assert {v["verdict"] for v in data["verdicts"]} == {"inconclusive"}
        assert all(v["reason"].startswith("different host: device 'test cpu' vs 'Ascend 310P3'") and
                   v["ratio"] is None for v in data["verdicts"])
        assert r.stdout.split("**Summary.** ")[1].startswith("Nothing could be judged: 0 regressed, 0 improved, "
                                                              "0 unchanged, 16 inconclusive")
        assert "no speed number could be judged (16 inconclusive)" in data["gate"]["reasons"]
        assert "**Resolution.**" in r.stdout and "`omzoo abtest BASE HEAD`" in r.stdout
    assert not any(" inconclusive: different host: " in g for g in data["gate"]["reasons"])  # regression level


@pytest.mark.pipeline
def test_unknown_revision_is_a_clear_error(repo, tmp_path: Path) -> None:
    path, env = repo
    r = omzoo("compare", BASE, "cann-9.9", "--out", tmp_path, cwd=path, env=env)
    assert r.returncode == 2
    assert "unknown revision 'cann-9.9'" in r.stderr and BASE in r.stderr and "Traceback" not in r.stderr


@pytest.mark.pipeline
def test_revision_without_metrics_is_reported(repo, tmp_path: Path) -> None:
    """DVC exits 0 when a revision's metrics fail to load (docs/dvc.md §5): compare says so, from the content."""
    r, data = run_compare(repo, tmp_path, f"{BASE}~1", BASE, "--fail-on", "regression", "--no-plots", rc=1)
    assert f"warning: no omzoo metrics at '{BASE}~1'" in r.stderr and "### Warnings" in r.stdout
    assert data["warnings"] and all(row["old"] is None and row["new"] is not None for row in data["numbers"])
    # its params ask for every point and model, so the missing files are named, and the gate fails closed
    assert {v["verdict"] for v in data["verdicts"]} == {"inconclusive"}
    assert all(v["reason"] == v["evidence"] == f"{BASE}~1:metrics/bench/{v['model']}-{v['bs']}-fp32.json missing (the "
               "point is in its params.yaml)" for v in data["verdicts"])
    assert {a["status"] for a in data["accuracy"]} == {"not evaluated"}
    assert {a["problem"] for a in data["accuracy"]} == {f"{BASE}~1:metrics/eval/{m}/fp32.json missing" for m in MODELS}
    assert data["summary"].startswith("Nothing could be judged: ")
