"""The whole comparison (omzoo.results.comparison) on a tiny git repository: verdicts and accuracy from its
commits, the dvc diffs and the plot stood in for; what compare.md and compare.json then hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from git_helpers import commit, new_repo
from rounds_helpers import side

from omzoo.core import paths
from omzoo.results import comparison, revisions
from omzoo.results.diffs import Row
from omzoo.results.revisions import DvcError, NotAvailable
from omzoo.results.rules import TIMED


def _revision(speed: float, top1: float) -> dict[str, object]:
    return {"params.yaml": "models: {m: {}}\nbatch_sizes: [8]\ncompare: {min_rounds: 4}\n",
            str(paths.bench_metrics("m", 8)): {"bs": 8, "throughput_compute_ips": 100.0 * speed},
            str(paths.bench_rounds("m", 8)): {"samples": side(speed).samples},
            str(paths.eval_metrics("m")): {"top1": top1, "n_images": 16}}


@pytest.fixture
def slower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Path]:
    """main, then a commit 2x slower with top-1 6.25 points lower; no DVC cache, no dvc calls, a failing plot."""
    repo = new_repo(tmp_path, monkeypatch)
    base, head = commit(repo, _revision(1.0, 75.0), "base"), commit(repo, _revision(0.5, 68.75), "slow")

    def not_here(rev: str, path: str) -> bytes:
        raise NotAvailable(f"{path} not in this cache", fetch=str(Path(path).parent))

    def no_plot(revs: list[str], out: Path) -> Path:
        raise DvcError("no data for plot 'throughput'")

    rows = [Row("m", "throughput", 8, "throughput_compute_ips", 100.0, 50.0),
            Row("m", "throughput", 32, "throughput_compute_ips", 1.0, 2.0),  # a stale file: bs 32 not asked for
            Row("gone", "accuracy", None, "top1", 1.0, 2.0)]  # a model no revision's params name
    monkeypatch.setattr(revisions, "read_tracked", not_here)
    monkeypatch.setattr(comparison, "render_plots", no_plot)
    monkeypatch.setattr(comparison, "metrics_diff", lambda b, h: (rows, {"m"}, ["one warning"]))
    monkeypatch.setattr(comparison, "params_diff", lambda b, h: [{"file": "params.yaml", "param": "x", "old": "1",
                                                                  "new": "2"}])
    return base, head, tmp_path / "out"


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
    assert data["rules"] == {"min_effect": 0.03, "max_accuracy_drop": 0.0, "min_rounds": 4, "show_images": 10,
                             "level": 0.95, "from": f"{head}:params.yaml"}
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
