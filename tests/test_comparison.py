"""The whole comparison (omzoo.results.comparison) on a tiny git repository: verdicts and accuracy from its
commits, the dvc diffs and the plot stood in for; what compare.md and compare.json then hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from git_helpers import commit, new_repo
from rounds_helpers import side

from omzoo.core import paths
from omzoo.results import comparison, revisions
from omzoo.results.diffs import Row
from omzoo.results.revisions import DvcError, NotAvailable
from omzoo.results.rules import TIMED


def _revision(speed: float, top1: float, compare: str = "{min_rounds: 4}", spread: float = 0.02,
              device: str = "test cpu") -> dict[str, object]:
    """A revision's params (model m at bs 8) and its committed results, as the stages write them."""
    s = side(speed, spread=spread)
    return {"params.yaml": f"models: {{m: {{}}}}\nbatch_sizes: [8]\ncompare: {compare}\n",
            str(paths.bench_metrics("m", 8)): {"bs": 8, **{k: v for k, v in s.headline.items() if "." not in k},
                                               "e2e_ms": {k.split(".")[1]: v for k, v in s.headline.items()
                                                          if "." in k}},
            str(paths.bench_rounds("m", 8)): {"samples": s.samples},
            str(paths.bench_info("m", 8)): {"device": device, "cpu_count": 2},
            str(paths.eval_metrics("m")): {"top1": top1, "n_images": 16}}


@pytest.fixture
def slower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Path]:
    """main, then a commit 2x slower with top-1 6.25 points lower; no DVC cache, no dvc calls, a failing plot."""
    repo = new_repo(tmp_path, monkeypatch)
    base, head = commit(repo, _revision(1.0, 75.0), "base"), commit(repo, _revision(0.5, 68.75), "slow")

    def not_here(rev: str, path: str) -> bytes:
        raise NotAvailable(f"{path} not in this cache", fetch=paths.holder(path))

    def no_plot(revs: list[str], out: Path) -> dict[Path, bytes]:
        raise DvcError("no data for plot 'throughput'")

    rows = [Row("m", "throughput", 8, "throughput_compute_ips", 100.0, 50.0),
            Row("m", "throughput", 32, "throughput_compute_ips", 1.0, 2.0),  # a stale file: bs 32 not asked for
            Row("gone", "accuracy", None, "top1", 1.0, 2.0)]  # a model no revision's params name
    monkeypatch.setattr(revisions, "read_tracked", not_here)
    monkeypatch.setattr(comparison, "plot_files", no_plot)
    monkeypatch.setattr(comparison, "metrics_diff", lambda b, h: (rows, {"m"}, ["one warning"]))
    monkeypatch.setattr(comparison, "params_diff", lambda b, h: [{"file": "params.yaml", "param": "x", "old": "1",
                                                                  "new": "2"}])
    return base, head, tmp_path / "out"


def test_the_plot_and_the_markdown_are_committed_together(slower: tuple[str, str, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """compare writes the plot's files with compare.md and compare.json in one commit: a failure writing any of them
    leaves no new plot beside the old markdown."""
    base, head, out = slower
    comparison.compare(base, head, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(comparison, "plot_files", lambda revs, o: {o / "throughput.png": b"new plot",
                                                                   o / "index.html": b"new page"})
    (out / "compare.json").unlink()
    (out / "compare.json").mkdir()  # compare.json cannot be replaced: the whole result must stay as it was
    del before["compare.json"]
    with pytest.raises(ValueError, match="compare.json"):
        comparison.compare(base, head, out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_compare_writes_the_markdown_and_every_row(slower: tuple[str, str, Path]) -> None:
    base, head, out = slower
    result = comparison.compare(base, head, out, fail_on="regression")
    assert (out / "compare.md").read_text() == result.text
    assert result.failed == f"{len(TIMED)} speed numbers regressed; m top-1 fell 6.25 points (75.00 → 68.75 %), " \
        "more than compare.max_accuracy_drop 0"
    assert result.warnings == ["one warning", "no data for plot 'throughput'"]
    assert f"**Gate** (`--fail-on regression`): **failed**: {result.failed}." in result.text
    assert result.text.endswith("### Warnings\n\n- one warning\n- no data for plot 'throughput'\n")
    data = json.loads((out / "compare.json").read_text())
    assert (data["base"], data["head"], data["summary"]) == (base, head, result.text.split("**Summary.** ")[1]
                                                             .split("\n")[0])
    assert data["method"] == "blocked"
    assert data["rules"] == {"min_effect": 0.03, "drift": 0.08, "max_accuracy_drop": 0.0, "min_rounds": 4,
                             "show_images": 10, "level": 0.95, "from": f"{base}:params.yaml", "notes": []}
    assert data["gate"]["fail_on"] == "regression" and not data["gate"]["passed"]
    assert len(data["gate"]["reasons"]) == len(TIMED) + 1
    assert [(v["bs"], v["metric"], v["verdict"]) for v in data["verdicts"]] == \
        [(8, m.name, "regressed") for m in TIMED]
    assert all(v["finding"].startswith("excludes 1: at least") for v in data["verdicts"])
    (acc,) = data["accuracy"]
    assert (acc["status"], acc["top1_drop"]) == ("changed", 6.25)
    assert data["fetch"] == {rev: f"git checkout {rev} && dvc fetch models/infer/m && git checkout -"
                             for rev in (base, head)}
    assert data["numbers"] == [{"model": "m", "kind": "throughput", "bs": 8, "metric": "throughput_compute_ips",
                                "old": 100.0, "new": 50.0, "delta": -50.0, "pct": -50.0}]
    assert data["params"] == [{"file": "params.yaml", "param": "x", "old": "1", "new": "2"}]
    assert data["random_weights"] == ["m"] and data["warnings"] == result.warnings


def test_without_fail_on_the_gate_is_reported_only_in_the_json(slower: tuple[str, str, Path]) -> None:
    base, head, out = slower
    result = comparison.compare(base, head, out, plots=False)
    assert "**Gate**" not in result.text and result.failed  # the run decides whether it matters
    assert result.warnings == ["one warning"]  # no plot asked for: none failed
    assert json.loads((out / "compare.json").read_text())["gate"]["fail_on"] is None


def test_an_unknown_revision_stops_before_anything_is_written(slower: tuple[str, str, Path]) -> None:
    base, _, out = slower
    with pytest.raises(ValueError, match="unknown revision 'cann-9.9'"):
        comparison.compare(base, "cann-9.9", out)
    assert not out.exists()


def _head(files: dict[str, object], message: str = "head") -> str:
    """Commit `files` on top of the fixture's revisions (the repository is the working directory)."""
    return commit(Path.cwd(), files, message)


@pytest.mark.parametrize("loosened", ["{min_rounds: 1000}", "{min_effect: 0.9}", "{drift: 5}",
                                      "{max_accuracy_drop: 7}", "{min_rounds: 1000, min_effect: 0.9, drift: 5, "
                                                                "max_accuracy_drop: 7}"])
def test_a_head_cannot_loosen_its_own_gate(slower: tuple[str, str, Path], loosened: str) -> None:
    """2x slower with top-1 6.25 points lower, and HEAD's params ask for rules under which it would pass: they are
    named and ignored, and the gate fails as under BASE's rules."""
    base, _, out = slower
    head = _head(_revision(0.5, 68.75, compare=loosened), "slow, with its own rules")
    result = comparison.compare(base, head, out, plots=False, fail_on="regression")
    assert result.failed == f"{len(TIMED)} speed numbers regressed; m top-1 fell 6.25 points (75.00 → 68.75 %), " \
        "more than compare.max_accuracy_drop 0"
    data = json.loads((out / "compare.json").read_text())
    assert {k: data["rules"][k] for k in ("min_effect", "drift", "max_accuracy_drop", "min_rounds")} == \
        {"min_effect": 0.03, "drift": 0.08, "max_accuracy_drop": 0.0, "min_rounds": 4}
    keys = [k.split(":")[0].strip() for k in loosened.strip("{}").split(",")]
    assert len(data["rules"]["notes"]) == len(keys)
    for key, note in zip(sorted(keys), sorted(data["rules"]["notes"]), strict=True):
        assert note.startswith(f"{head}'s compare.{key} ") and note.endswith(f"ignored (the rules are the "
                                                                             f"reference's, {base})")
        assert f"{note}." in result.text.split("**Rules.** ")[1].split("\n")[0]


def test_a_head_may_tighten_the_rules(slower: tuple[str, str, Path]) -> None:
    """2 % slower with rounds that agree to 0.1 %: within BASE's drift and min_effect; HEAD asking for no drift
    still leaves it under min_effect 3 %, and HEAD tightening min_effect to 1 % as well gets it regressed."""
    base, _, out = slower
    reference = _head(_revision(1.0, 75.0, spread=0.001), "tight base")
    for compare, outcome in (("{}", "unchanged"), ("{drift: 0}", "unchanged"),
                             ("{drift: 0, min_effect: 0.01}", "regressed")):
        head = _head(_revision(0.98, 75.0, compare=compare, spread=0.001), f"2 % slower, {compare}")
        comparison.compare(reference, head, out, plots=False, fail_on="regression")
        data = json.loads((out / "compare.json").read_text())
        assert {v["verdict"] for v in data["verdicts"]} == {outcome}, (compare, data["verdicts"][0]["reason"])
        assert all(n.endswith(": used") for n in data["rules"]["notes"]) and \
            len(data["rules"]["notes"]) == compare.count(":")
        assert data["gate"]["passed"] is (outcome == "unchanged")
    assert data["rules"]["min_effect"] == 0.01 and data["rules"]["drift"] == 0
    assert all(re.search(r"excludes 1: at least 1\.\d%", v["reason"]) for v in data["verdicts"])
    assert base != reference


_METRICS, _ROUNDS, _INFO, _EVAL = (str(p) for p in (paths.bench_metrics("m", 8), paths.bench_rounds("m", 8),
                                                    paths.bench_info("m", 8), paths.eval_metrics("m")))


@pytest.mark.parametrize(("broken", "named"), [
    ({_METRICS: "{\"bs\": 8, \"throughput"}, f"{_METRICS} not valid JSON"),
    ({_METRICS: {"bs": 8}}, f"{_METRICS} has no value of throughput_compute_ips"),
    ({_METRICS: None}, f"{_METRICS} missing (the point is in its params.yaml)"),
    ({_ROUNDS: {"contended": 0}}, f"{_ROUNDS} has no per-round samples"),
    ({_ROUNDS: {"samples": {k: v for k, v in side().samples.items() if k != "throughput_compute_ips"}}},
     f"{_ROUNDS} has no rounds of throughput_compute_ips"),  # the other three: unchanged
    ({_ROUNDS: "not json"}, f"{_ROUNDS} not valid JSON"),
    ({_INFO: None}, f"{_INFO} missing"),
    ({_EVAL: None}, f"{_EVAL} missing"),
    ({_EVAL: {"n_images": 16}}, f"{_EVAL} has no top1"),
])
def test_broken_evidence_at_head_fails_the_gate_naming_the_file(slower: tuple[str, str, Path], broken: dict,
                                                                named: str) -> None:
    """HEAD as fast and as accurate as BASE, one of its files broken: the gate fails, and says which file."""
    base, _, out = slower
    head = _head({**_revision(1.0, 75.0), **broken}, "broken")
    result = comparison.compare(base, head, out, plots=False, fail_on="regression")
    assert f"{head}:{named}" in result.failed, result.failed
    data = json.loads((out / "compare.json").read_text())
    file = f"{head}:{named.split()[0]}"
    assert not data["gate"]["passed"] and all(file in r for r in data["gate"]["reasons"] if "no speed number" not in r)
    assert "regressed" not in {v["verdict"] for v in data["verdicts"]}
    assert f"{head}:{named}" in result.text.split("**Gate**")[1].split("\n")[0]


def test_a_committed_contended_head_fails_the_gate(slower: tuple[str, str, Path]) -> None:
    base, _, out = slower
    head = _head({**_revision(1.0, 75.0), _ROUNDS: {"samples": side().samples, "contended": 1}}, "busy")
    result = comparison.compare(base, head, out, plots=False, fail_on="regression")
    data = json.loads((out / "compare.json").read_text())
    assert {(v["verdict"], v["reason"]) for v in data["verdicts"]} == {("inconclusive", "head contended")}
    assert "m bs8 throughput_compute_ips: head contended" in data["gate"]["reasons"]
    assert result.failed.startswith("m bs8 throughput_compute_ips: head contended")
    assert result.text.split("**Summary.** ")[1].startswith("Nothing could be judged: 0 regressed")


def test_results_from_another_host_are_not_judged(slower: tuple[str, str, Path]) -> None:
    base, _, out = slower
    head = _head(_revision(0.5, 75.0, device="Ascend 310P"), "2x slower, elsewhere")
    for fail_on in ("regression", "inconclusive"):
        result = comparison.compare(base, head, out, plots=False, fail_on=fail_on)
        data = json.loads((out / "compare.json").read_text())
        assert {v["verdict"] for v in data["verdicts"]} == {"inconclusive"}
        assert all(v["reason"].startswith("different host: device 'test cpu' vs 'Ascend 310P'") and
                   v["ratio"] is None for v in data["verdicts"])
        assert data["summary"].startswith("Nothing could be judged: 0 regressed, 0 improved, 0 unchanged, "
                                          f"{len(TIMED)} inconclusive")
        assert not data["gate"]["passed"] and "no speed number could be judged" in result.failed
    assert any(r.startswith("m bs8 throughput_compute_ips inconclusive: different host") for r in
               data["gate"]["reasons"])
    assert "**Resolution.**" in result.text and "`omzoo abtest BASE HEAD`" in result.text
