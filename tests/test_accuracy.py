"""Accuracy, compared (omzoo.results.accuracy): exact per-image changes, the top-1 drop the gate counts, and one
model compared between two revisions of a tiny git repository, its predictions read through a stand-in for the
DVC cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from git_helpers import commit, new_repo
from rounds_helpers import top1

from omzoo.core import paths
from omzoo.results import revisions
from omzoo.results.accuracy import (
    Accuracy,
    Predictions,
    accuracy_failures,
    compare_accuracy,
    fetch_commands,
    image_changes,
    read_predictions,
)
from omzoo.results.revisions import NotAvailable
from omzoo.results.rules import CompareConfig


def test_image_changes_are_exact_counts_with_names() -> None:
    labels = np.array([0, 1, 2, 3, 4, 5])
    base = Predictions([f"i{k}.jpg" for k in range(6)], labels, np.array([0, 1, 9, 3, 9, 5]), "h")
    head = Predictions(base.names, labels, np.array([0, 7, 2, 3, 8, 4]), "h")
    out = image_changes(base, head, show=2)
    assert (out["n_changed_top1"], out["right_to_wrong"], out["wrong_to_right"]) == (4, 2, 1)
    assert out["changed"] == [{"name": "i1.jpg", "label": 1, "old": 1, "new": 7},
                              {"name": "i2.jpg", "label": 2, "old": 9, "new": 2}]
    unlabelled = image_changes(Predictions(base.names, None, base.predicted, "h"), head, show=10)
    assert unlabelled["n_changed_top1"] == 4 and unlabelled["right_to_wrong"] is None
    assert [c["label"] for c in unlabelled["changed"]] == [None] * 4


def test_a_top1_drop_counts_one_image_and_only_on_the_same_data() -> None:
    one_image = top1(75.0, 73.4375)  # 1 of 64 images right→wrong
    assert one_image.top1_drop == pytest.approx(1.5625)
    assert accuracy_failures([one_image], 0.0) == [
        "m top-1 fell 1.56 points (75.00 → 73.44 %), more than compare.max_accuracy_drop 0"]
    assert accuracy_failures([one_image], 2.0) == []
    assert accuracy_failures([top1(75.0, 75.0 - 4e-7)], 0.0) == []  # below what metrics files round to
    assert accuracy_failures([top1(75.0, 76.0)], 0.0) == []  # a gain
    for status in ("different data", "not evaluated"):
        assert top1(75.0, 50.0, status).top1_drop is None
        assert accuracy_failures([top1(75.0, 50.0, status)], 0.0) == []
    assert top1(None, 50.0).top1_drop is None


def _predictions(predicted: list[int], shards: str = "s1") -> bytes:
    return json.dumps({"names": [f"img_{i}.jpg" for i in range(len(predicted))], "labels": [0, 1, 2, 3],
                       "predicted": predicted, "shards_hash": shards}).encode()


def test_predictions_are_checked_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"good": _predictions([0, 1, 2, 0]), "short": _predictions([0, 1]), "other": b'{"names": []}'}
    monkeypatch.setattr(revisions, "read_tracked", lambda rev, path: files[rev])
    p = read_predictions("good", "m")
    assert p.names[-1] == "img_3.jpg" and p.predicted.tolist() == [0, 1, 2, 0] and p.shards_hash == "s1"
    with pytest.raises(NotAvailable, match=r"models/infer/m/fp32/predictions\.json at short: names, labels and "
                                           r"predicted differ in length"):
        read_predictions("short", "m")
    with pytest.raises(NotAvailable, match=r"at other is not a predictions file \(KeyError"):
        read_predictions("other", "m")


def _eval(top1: float, manifest: str = "d1") -> dict[str, object]:
    return {str(paths.eval_metrics("m")): {"top1": top1, "top5": 100.0, "n_images": 4},
            str(paths.eval_info("m")): {"dataset_manifest": manifest}}


@pytest.fixture
def two_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Commit base and head eval files for model m; predictions per revision come from `tracked` (or NotAvailable
    for a revision missing there, as from a clone without the DVC cache)."""
    repo = new_repo(tmp_path, monkeypatch)
    tracked: dict[str, bytes] = {}

    def read_tracked(rev: str, path: str) -> bytes:
        if rev not in tracked:
            raise NotAvailable(f"{path} not here", fetch=str(paths.infer("m")))
        return tracked[rev]

    monkeypatch.setattr(revisions, "read_tracked", read_tracked)

    def commits(base: dict, head: dict) -> tuple[str, str]:
        return commit(repo, base, "base"), commit(repo, head, "head")

    return commits, tracked


def test_the_same_predictions_are_identical_and_changed_ones_counted(two_revisions) -> None:
    commits, tracked = two_revisions
    base, head = commits(_eval(75.0), _eval(50.0))
    tracked.update({base: _predictions([0, 1, 2, 0]), head: _predictions([0, 1, 2, 0])})
    same = compare_accuracy(base, base, "m", CompareConfig())
    assert (same.status, same.n_images, same.n_changed_top1, same.top1_drop) == ("identical", 4, 0, 0.0)
    tracked[head] = _predictions([0, 9, 2, 3])
    moved = compare_accuracy(base, head, "m", CompareConfig(show_images=1))
    assert (moved.status, moved.n_changed_top1, moved.right_to_wrong, moved.wrong_to_right) == ("changed", 2, 1, 1)
    assert moved.changed == [{"name": "img_1.jpg", "label": 1, "old": 1, "new": 9}]
    assert moved.topk["top1"] == {"old": 75.0, "new": 50.0} and moved.top1_drop == 25.0


def test_other_data_or_no_eval_is_not_compared(two_revisions) -> None:
    commits, tracked = two_revisions
    base, head = commits(_eval(75.0, "d1"), _eval(75.0, "d2"))
    other = compare_accuracy(base, head, "m", CompareConfig())
    assert other.status == "different data" and other.top1_drop is None
    assert other.note == f"not compared: {base} ran on dataset manifest d1…, {head} on d2… (different data)"
    base, head = commits(_eval(75.0), _eval(75.0))
    tracked.update({base: _predictions([0, 1, 2, 0], "s1"), head: _predictions([0, 1, 2, 0], "s2")})
    shards = compare_accuracy(base, head, "m", CompareConfig())
    assert shards.status == "different data" and "different shard sets" in shards.note
    paths.eval_metrics("m").unlink()  # the working directory is the repository
    absent = compare_accuracy("workspace", head, "m", CompareConfig())
    assert (absent.status, absent.note) == ("not evaluated", "no usable metrics/eval/m/fp32.json at workspace")
    assert absent.problem == "workspace:metrics/eval/m/fp32.json missing"  # no params given: every model is declared
    unasked = compare_accuracy("workspace", head, "m", CompareConfig(), {"workspace": set(), head: {"m"}})
    assert (unasked.status, unasked.problem) == ("not evaluated", "")  # not in workspace's params: not evaluated


@pytest.mark.parametrize(("body", "problem"), [
    (None, "missing"),
    ("{\"top1\": 75", "not valid JSON (Expecting"),
    ("[75.0]", "is not a JSON object"),
    ({"top5": 100.0, "n_images": 4}, "has no top1"),
    ({"top1": "high", "n_images": 4}, "top1 is 'high' (str), not a finite number"),
])
def test_an_eval_file_that_cannot_serve_is_a_problem_naming_it(two_revisions, body: object, problem: str) -> None:
    commits, _ = two_revisions
    base, head = commits(_eval(75.0), {**_eval(75.0), str(paths.eval_metrics("m")): body})
    declared = {base: {"m"}, head: {"m"}}
    a = compare_accuracy(base, head, "m", CompareConfig(), declared)
    assert a.problem.startswith(f"{head}:metrics/eval/m/fp32.json {problem}"), a.problem
    assert base not in a.problem and a.top1_drop is None
    assert compare_accuracy(base, base, "m", CompareConfig(), {base: {"m"}}).problem == ""


def test_unreadable_predictions_keep_top_k_and_name_their_fetch(two_revisions) -> None:
    commits, tracked = two_revisions
    base, head = commits(_eval(75.0), _eval(75.0))
    a = compare_accuracy(base, head, "m", CompareConfig())
    assert (a.status, a.n_changed_top1, a.note) == ("same top-k", None, "")
    assert set(a.unreadable) == {base, head} and a.fetch_targets == {base: "models/infer/m", head: "models/infer/m"}
    b = Accuracy("n", fetch_targets={base: "models/infer/n"})
    assert fetch_commands([a, b]) == {
        base: f"git checkout {base} && dvc fetch models/infer/m models/infer/n && git checkout -",
        head: f"git checkout {head} && dvc fetch models/infer/m && git checkout -"}


def test_a_reason_no_fetch_cures_is_the_models_note(two_revisions) -> None:
    commits, tracked = two_revisions
    base, head = commits(_eval(75.0), _eval(70.0))
    tracked[base] = _predictions([0, 1, 2, 0])
    tracked[head] = b"not json"
    a = compare_accuracy(base, head, "m", CompareConfig())
    assert a.status == "changed" and a.fetch_targets == {}
    assert a.note.startswith(f"per-image changes not compared: models/infer/m/fp32/predictions.json at {head} is not a "
                             "predictions file")
    assert fetch_commands([a]) == {}
