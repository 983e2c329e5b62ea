"""What a comparison compares and by which rules (omzoo.results.rules): the schema's metrics, HEAD's `compare:`
section, and the points either revision's params ask for."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_helpers import commit, new_repo, write

from omzoo.core import metrics
from omzoo.core.params import Params, ParamsError
from omzoo.results.rules import ACCURACY, TIMED, CompareConfig, declared, points, rules


def test_the_compared_metrics_are_the_schemas() -> None:
    assert [m.name for m in TIMED] == list(metrics.ROUND_METRICS)
    assert {m.better for m in TIMED} == {"higher", "lower"}
    assert [m.name for m in ACCURACY] == [m.name for m in metrics.of("eval") if m.compared]
    assert ACCURACY[0].name == metrics.TOP1


def test_the_rules_are_heads_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "models: {}\n"})
    assert rules("main") == CompareConfig()
    write(repo, {"params.yaml": "compare: {min_effect: 0.5, min_rounds: 3}\n"})
    assert rules("workspace") == CompareConfig(min_effect=0.5, min_rounds=3)
    write(repo, {"params.yaml": "compare: {min_efect: 0.5}\n"})
    with pytest.raises(ParamsError, match=r"workspace:params\.yaml: compare: unknown key\(s\) \['min_efect'\]"):
        rules("workspace")


def test_the_points_are_the_params_keys_of_either_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert declared(Params({"models": {"b": {}, "a": None}, "batch_sizes": [8, 1]}, Path("p.yaml"))) == \
        (["b", "a"], [("b", 8), ("b", 1), ("a", 8), ("a", 1)])
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "models: {m_b: {}, m_a: {}}\nbatch_sizes: [1, 8]\n"})
    write(repo, {"params.yaml": "models: {m_c: {}, m_b: {}}\nbatch_sizes: [8, 32]\n"})
    assert points("main", "workspace") == (
        ["m_a", "m_b", "m_c"],
        [("m_a", 1), ("m_a", 8), ("m_b", 1), ("m_b", 8), ("m_b", 32), ("m_c", 8), ("m_c", 32)])
