"""Accuracy, compared: top-k as exact numbers from the committed eval metrics, and which images changed their
top-1 from each revision's per-image predictions (infer's predictions.json, DVC-tracked, read through the DVC cache
or the remote).

On the same data every changed prediction is real, not noise; different data (the dataset manifest hash or the
shard set differs) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omzoo.core import metrics, paths
from omzoo.core.metrics import number
from omzoo.results import revisions
from omzoo.results.revisions import NotAvailable
from omzoo.results.rules import ACCURACY, CompareConfig

_ROUNDING = 0.5 * 10.0**-metrics.WRITTEN_DECIMALS  # metrics files round to this; a smaller drop is no drop


@dataclass(frozen=True)
class Predictions:
    """One revision's per-image top-1 (infer's predictions.json), in dataset order."""

    names: list[str]
    labels: np.ndarray | None
    predicted: np.ndarray  # the top-1 class per image
    shards_hash: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Predictions:
        """From predictions.json's fields (infer writes them; abtest's workers answer with the same)."""
        labels = doc.get("labels")
        return cls(list(doc["names"]), None if labels is None else np.asarray(labels, dtype=np.int64),
                   np.asarray(doc["predicted"], dtype=np.int64), str(doc["shards_hash"]))


def read_predictions(rev: str, model: str, precision: str = paths.REFERENCE) -> Predictions:
    """Through the DVC cache or remote (revisions.read_tracked); raises NotAvailable with the fetch command."""
    path = paths.predictions(model, precision)
    try:
        p = Predictions.from_doc(json.loads(revisions.read_tracked(rev, str(path))))
    except (ValueError, KeyError, TypeError) as e:
        raise NotAvailable(f"{path} at {rev} is not a predictions file ({type(e).__name__}: {e})") from None
    if len(p.names) != len(p.predicted) or (p.labels is not None and len(p.labels) != len(p.predicted)):
        raise NotAvailable(f"{path} at {rev}: names, labels and predicted differ in length")
    return p


@dataclass
class Accuracy:
    """One model's accuracy, compared: exact top-k, and which images changed their top-1 (None where unknown)."""

    model: str
    status: str = ""  # identical | changed | same top-k | different data | not evaluated
    note: str = ""
    n_images: int | None = None
    topk: dict[str, dict[str, float | None]] = field(default_factory=dict)  # {metric: {"old": .., "new": ..}}
    n_changed_top1: int | None = None
    right_to_wrong: int | None = None
    wrong_to_right: int | None = None
    changed: list[dict[str, Any]] = field(default_factory=list)  # the first: name, label, old, new (class ids)
    problem: str = ""  # a declared model's eval file missing, corrupt or without top-1: the gate fails on it
    unreadable: dict[str, str] = field(default_factory=dict)  # revision -> why its predictions could not be read
    fetch_targets: dict[str, str] = field(default_factory=dict)  # revision -> the DVC target a fetch would bring

    @property
    def top1_drop(self) -> float | None:
        """old − new top-1 in points; None when the two runs cannot be compared."""
        return self.drop(metrics.TOP1)

    def drop(self, name: str) -> float | None:
        """old − new of a compared accuracy metric in points; None when the runs cannot be compared or lack it."""
        t = self.topk.get(name, {})
        if self.status in ("different data", "not evaluated") or t.get("old") is None or t.get("new") is None:
            return None
        return t["old"] - t["new"]


def image_changes(base: Predictions, head: Predictions, show: int) -> dict[str, Any]:
    """How many images changed their top-1, right→wrong and wrong→right against the labels, and the first `show`
    of them in dataset order. Both sides must score the same images (same shard set)."""
    moved = np.flatnonzero(base.predicted != head.predicted)
    out: dict[str, Any] = {"n_changed_top1": int(moved.size), "right_to_wrong": None, "wrong_to_right": None}
    if base.labels is not None:
        was, now = base.predicted == base.labels, head.predicted == base.labels
        out.update(right_to_wrong=int(np.sum(was & ~now)), wrong_to_right=int(np.sum(~was & now)))
    out["changed"] = [{"name": base.names[i], "label": None if base.labels is None else int(base.labels[i]),
                       "old": int(base.predicted[i]), "new": int(head.predicted[i])} for i in moved[:show]]
    return out


def compare_accuracy(base: str, head: str, model: str, cfg: CompareConfig,
                     declared: dict[str, set[str]] | None = None) -> Accuracy:
    """Top-k from the committed eval metrics; per-image changes from both revisions' predictions when readable.
    `declared`: the models each revision's params ask for; there a missing, corrupt or top-1-less eval file is a
    `problem` (the gate fails closed on it), elsewhere the model is simply not evaluated on that side. `model`: a
    subject (paths.subject): a precision other than fp32 also compares its agreement with fp32, image by image."""
    acc = Accuracy(model)
    model, precision = paths.parse_subject(model)
    path = str(paths.eval_metrics(model, precision))
    sides: dict[str, Any] = {}
    problems: list[str] = []
    for rev in (base, head):
        found, why = revisions.read_evidence(rev, path)
        if isinstance(found, dict):
            try:
                metrics.checked("eval", found, f"{rev}:{path}")
            except ValueError as e:  # unusable as evidence: named, and the gate fails closed on it
                found, why = None, str(e).removeprefix(f"{rev}:{path}: ")
        sides[rev] = found if isinstance(found, dict) else None
        if declared is None or model in declared[rev]:
            if why or not isinstance(found, dict):
                problems.append(f"{rev}:{path} {why or 'is not a JSON object'}")
            elif number(found.get(metrics.TOP1)) is None:
                problems.append(f"{rev}:{path} has no {metrics.TOP1}")
    acc.problem = "; ".join(problems)
    absent = [rev for rev, m in sides.items() if m is None]
    if absent:
        acc.status, acc.note = "not evaluated", f"no usable {path} at {' and '.join(absent)}"
        return acc
    old, new = sides[base], sides[head]
    acc.topk = {m.name: {"old": number(old.get(m.name)), "new": number(new.get(m.name))} for m in ACCURACY}
    n_images = number(old.get(metrics.N_IMAGES))
    acc.n_images = None if n_images is None else int(n_images)
    data = [(revisions.read_json(rev, str(paths.eval_info(model, precision))) or {}).get("dataset_manifest")
            for rev in (base, head)]
    if all(data) and data[0] != data[1]:
        acc.status = "different data"
        acc.note = (f"not compared: {base} ran on dataset manifest {str(data[0])[:12]}…, {head} on "
                    f"{str(data[1])[:12]}… (different data)")
        return acc
    same_topk = all(v["old"] == v["new"] for v in acc.topk.values())
    read: list[Predictions] = []
    for rev in (base, head):
        try:
            read.append(read_predictions(rev, model, precision))
        except NotAvailable as e:
            acc.unreadable[rev] = str(e)
            if e.fetch:
                acc.fetch_targets[rev] = e.fetch
    if acc.unreadable:
        acc.status = "same top-k" if same_topk else "changed"
        if len(acc.fetch_targets) < len(acc.unreadable):  # a reason a fetch cannot cure: said per model
            acc.note = "per-image changes not compared: " + "; ".join(
                why for rev, why in acc.unreadable.items() if rev not in acc.fetch_targets)
        return acc
    b, h = read
    if b.shards_hash != h.shards_hash or b.names != h.names:
        acc.status = "different data"
        acc.note = "not compared: the two runs' predictions come from different shard sets (different data)"
        return acc
    changes = image_changes(b, h, cfg.show_images)
    acc.n_images = len(b.names)
    acc.n_changed_top1, acc.right_to_wrong = changes["n_changed_top1"], changes["right_to_wrong"]
    acc.wrong_to_right, acc.changed = changes["wrong_to_right"], changes["changed"]
    acc.status = "identical" if same_topk and not acc.n_changed_top1 else "changed"
    return acc


def accuracy_failures(accuracy: list[Accuracy], max_drop: float) -> list[str]:
    """Every model whose top-1, or (at a precision other than fp32) whose top-1 agreement with fp32, fell by more
    than `max_drop` points (compare.max_accuracy_drop; same data only)."""
    out = []
    for a in accuracy:
        for name, what in ((metrics.TOP1, "top-1"), (metrics.AGREEMENT_TOP1, "top-1 agreement with fp32")):
            drop = a.drop(name)
            if drop is not None and drop > max_drop + _ROUNDING:
                t = a.topk[name]
                out.append(f"{a.model} {what} fell {drop:.2f} points ({t['old']:.2f} → {t['new']:.2f} %), more than "
                           f"compare.max_accuracy_drop {max_drop:g}")
    return out


def fetch_commands(accuracy: list[Accuracy]) -> dict[str, str]:
    """Per revision, the one command that fetches every unreadable prediction of it into this DVC cache."""
    targets: dict[str, list[str]] = {}
    for a in accuracy:
        for rev, target in a.fetch_targets.items():
            targets.setdefault(rev, []).append(target)
    return {rev: revisions.fetch_command(rev, " ".join(t)) for rev, t in targets.items()}
