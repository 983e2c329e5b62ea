"""The evaluate stage: the denominator is the dataset, random weights are marked, the guides' pass rule, and the
info file names where the weights and the data came from."""

from __future__ import annotations

import numpy as np
import pytest

from omzoo.core import zoo
from omzoo.stages.evaluate import evaluate, provenance

MODEL = "ran92_cifar10"


class _Shards:
    """The slice of ShardSet that evaluate reads."""

    def __init__(self, labels: np.ndarray, dataset_size: int, n_skipped: int) -> None:
        self.labels = labels
        self.manifest = {"dataset_size": dataset_size, "n_skipped": n_skipped, "source": "x", "pixels": "cifar32"}
        self.hash = "d1a7a5e7" * 8

    def __len__(self) -> int:
        return len(self.labels)


def test_evaluate_refuses_a_short_denominator() -> None:
    labels = np.array([1, 2, 3, 4])
    logits = np.eye(10)[[1, 2, 3, 0]].astype(np.float32)
    m = evaluate(MODEL, logits, _Shards(labels, 5, 1), {"weights": "published"}, None)
    assert m["top1"] == 75.0 and m["n_images"] == 4 and m["n_skipped"] == 1
    assert m["delta_top1"] == pytest.approx(75.0 - 95.34) and m["pass"] == 0
    with pytest.raises(ValueError, match="scored 4 images but the dataset has 6"):
        evaluate(MODEL, logits, _Shards(labels, 6, 1), {"weights": "published"}, None)


def test_evaluate_marks_random_weights_and_omits_pass() -> None:
    labels = np.array([1])
    m = evaluate(MODEL, np.eye(10)[[1]].astype(np.float32), _Shards(labels, 1, 0), {"weights": "random"}, None)
    assert m["random_weights"] == 1 and "pass" not in m


def test_the_info_file_says_where_the_weights_and_the_data_came_from() -> None:
    shards = _Shards(np.array([1]), 1, 0)
    info = provenance(MODEL, "onnxruntime", {"weights": "random", "seed": 3}, shards)
    assert (info["model"], info["backend"], info["weights"]) == (MODEL, "onnxruntime", "random")
    assert info["weights_source"] == "random, seed 3" and info["checkpoint_sha256"] is None
    assert (info["dataset"], info["dataset_manifest"], info["pixels"]) == ("x", shards.hash, "cifar32")
    assert info["skipped"] == [] and "argsort(-logits), stable" in info["ranking"]
    assert info["pass_rule"] == f"ours >= 0.99 x published ({zoo.get(MODEL).reference_platform})"
    published = provenance(MODEL, "acl", {"weights": "published", "sha256": "c0ffee", "source": "w.pkl"}, shards)
    assert (published["weights_source"], published["checkpoint_sha256"], published["backend"]) == (
        "w.pkl", "c0ffee", "acl")
