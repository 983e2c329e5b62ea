"""`omzoo models`: the registry as a table, one row per registered model (a model registered later included), in
the tabulate format --format names."""

from __future__ import annotations

import dataclasses

import pytest

from omzoo import cli
from omzoo.core import zoo

HEADER = ["id", "model", "input", "classes", "checkpoint", "container", "pixels", "params", "GFLOPs",
          "published accuracy"]


def _rows(out: str) -> list[list[str]]:
    """The cells of a github-format table, header first, without the rule under the header."""
    lines = [ln for ln in out.splitlines() if not ln.startswith("|-")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_every_registered_model_is_one_row(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    header, *rows = _rows(capsys.readouterr().out)
    assert header == HEADER
    assert [r[0] for r in rows] == list(zoo.REGISTRY)
    ran = dict(zip(HEADER, rows[list(zoo.REGISTRY).index("ran92_cifar10")], strict=True))
    spec = zoo.get("ran92_cifar10")
    assert (ran["model"], ran["input"], ran["classes"], ran["pixels"]) == (spec.title, "3x32x32", "10", "cifar32")
    assert (ran["checkpoint"], ran["container"]) == (spec.checkpoint_file, spec.container)
    assert ran["params"] == f"{spec.param_count:,}" and ran["GFLOPs"] == f"{spec.flops / 1e9:.2f}"
    assert ran["published accuracy"] == " ".join(f"{p}:{k}={v}" for p, acc in spec.published_accuracy.items()
                                                 for k, v in acc.items())


def test_a_model_registered_later_is_listed(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    toy = dataclasses.replace(zoo.get("ran92_cifar10"), id="toynet", title="ToyNet", published_accuracy={})
    monkeypatch.setitem(zoo.REGISTRY, "toynet", toy)
    assert cli.main(["models"]) == 0
    (row,) = [r for r in _rows(capsys.readouterr().out) if r[0] == "toynet"]
    assert row[1] == "ToyNet" and row[-1] == ""


def test_the_format_is_a_tabulate_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "--format", "plain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["id", "model", "input"] and "|" not in "".join(lines)
    assert len(lines) == 1 + len(zoo.REGISTRY)
