"""What a comparison compares and by which rules (omzoo.results.rules): the schema's metrics, HEAD's `compare:`
section (BASE's, the reference: HEAD may only tighten it), and the points either revision's params ask for."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from git_helpers import commit, new_repo, write

from omzoo.core import metrics
from omzoo.core.params import Params, ParamsError
from omzoo.results.rules import ACCURACY, TIMED, CompareConfig, Rules, abtest_rules, declared, points, rules


def test_the_compared_metrics_are_the_schemas() -> None:
    assert [m.name for m in TIMED] == list(metrics.ROUND_METRICS)
    assert {m.better for m in TIMED} == {"higher", "lower"}
    assert [m.name for m in ACCURACY] == [m.name for m in metrics.of("eval") if m.compared]
    assert ACCURACY[0].name == metrics.TOP1


def test_the_rules_are_bases_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "models: {}\n"})
    assert rules("main", "main") == Rules(CompareConfig(), "main:compare", [])
    commit(repo, {"params.yaml": "compare: {min_effect: 0.05, min_rounds: 3}\n"}, "reference")
    assert rules("main", "main~1").config == CompareConfig(min_effect=0.05, min_rounds=3)  # BASE's, not HEAD's
    assert rules("main", "main~1").notes == []  # HEAD says nothing: it asks for nothing
    write(repo, {"params.yaml": "compare: {min_efect: 0.5}\n"})
    with pytest.raises(ParamsError, match=r"workspace:params\.yaml: compare: unknown key\(s\) \['min_efect'\]"):
        rules("main", "workspace")
    with pytest.raises(ParamsError, match=r"workspace:params\.yaml"):
        rules("workspace", "main")


@pytest.mark.parametrize(("heads", "used"), [
    ("min_rounds: 1000", {}),  # more rounds than any run has: every number inconclusive, the gate silenced
    ("min_rounds: 1", {}),  # fewer: thinner evidence
    ("min_effect: 0.9", {}),
    ("drift: 5", {}),
    ("max_accuracy_drop: 7", {}),
    ("min_effect: 0.01", {"min_effect": 0.01}),  # stricter: taken
    ("drift: 0.02", {"drift": 0.02}),
    ("max_accuracy_drop: 0", {}),  # the same as BASE's: nothing to say
    ("show_images: 50", {"show_images": 50}),
])
def test_head_may_tighten_the_rules_but_not_loosen_them(heads: str, used: dict, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "compare: {max_accuracy_drop: 0, min_rounds: 5}\n"}, "base")
    commit(repo, {"params.yaml": f"compare: {{{heads}}}\n"}, "head")
    ruling = rules("main~1", "main")
    assert ruling.config == dataclasses.replace(CompareConfig(), **used)
    assert ruling.source == "main~1:compare"
    key, value = (x.strip() for x in heads.split(":"))
    if key in used:
        assert ruling.notes == [f"main's compare.{key} {used[key]!r} is stricter than main~1's "
                                f"{getattr(CompareConfig(), key)!r}: used"]
    elif float(value) == getattr(CompareConfig(), key):
        assert ruling.notes == []
    else:
        (note,) = ruling.notes
        how = "differs from" if key == "min_rounds" else "would loosen"  # min_rounds either way: BASE's alone
        typed = type(getattr(CompareConfig(), key))(value)  # as the schema reads it: drift 5 is the float 5.0
        assert note.startswith(f"main's compare.{key} {typed!r} {how} main~1's ") and \
            note.endswith("ignored (the rules are the reference's, main~1)")


def test_abtest_rules_are_the_references_too() -> None:
    base = Params({"abtest": {"min_effect": 0.02}}, Path("base.yaml"))
    head = Params({"abtest": {"min_effect": 0.5}}, Path("head.yaml"))
    ruling = abtest_rules(base, head, "main", "HEAD")
    assert ruling.config.min_effect == 0.02 and ruling.source == "main:abtest"
    assert ruling.notes == ["HEAD's abtest.min_effect 0.5 would loosen main's 0.02: ignored (the rules are the "
                            "reference's, main)"]
    assert abtest_rules(head, base, "a", "b").config.min_effect == 0.02  # stricter either way round


def test_the_points_are_the_params_keys_of_either_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert declared(Params({"models": {"b": {}, "a": None}, "batch_sizes": [8, 1]}, Path("p.yaml"))) == \
        (["b", "a"], [("b", 8), ("b", 1), ("a", 8), ("a", 1)])
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "models: {m_b: {}, m_a: {}}\nbatch_sizes: [1, 8]\n"})
    write(repo, {"params.yaml": "models: {m_c: {}, m_b: {}}\nbatch_sizes: [8, 32]\n"})
    assert points("main", "workspace") == (
        ["m_a", "m_b", "m_c"],
        [("m_a", 1), ("m_a", 8), ("m_b", 1), ("m_b", 8), ("m_b", 32), ("m_c", 8), ("m_c", 32)])
