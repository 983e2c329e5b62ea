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


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory):
    """The embedded sample's 64 CIFAR images as a shard set."""
    from omzoo.data.preprocess import preprocess
    from omzoo.data.sample import write_sample
    from omzoo.data.shards import ShardSet

    root = tmp_path_factory.mktemp("evaluate")
    write_sample(root / "sample")
    preprocess(zoo.get(MODEL).recipe, root / "sample" / "cifar-10-batches-py", None, root / "shards", progress=False)
    return ShardSet(root / "shards")


def _inferred(folder, shards, precision: str, logits: np.ndarray) -> None:
    import json

    (folder / precision).mkdir(parents=True)
    np.save(folder / precision / "logits.npy", logits)
    (folder / precision / "infer.json").write_text(json.dumps({
        "model": MODEL, "backend": "onnxruntime", "precision": precision, "shards_hash": shards.hash,
        "precision_record": {"precision": precision, "quant_format": "QDQ"}}))


def test_a_precision_is_measured_against_fp32_on_every_image(cifar, tmp_path) -> None:
    """Per image: the images whose top-1 moved are named, and the agreement numbers are fp32's own arithmetic."""
    import json

    from omzoo import cli

    rng = np.random.default_rng(0)
    fp32 = rng.normal(size=(len(cifar), 10)).astype(np.float32)
    int8 = fp32 + 0.01
    top1 = fp32.argmax(1)
    moved = [3, 17, 40]
    for i in moved:  # the runner-up wins on three images
        int8[i, np.argsort(-fp32[i])[1]] = fp32[i].max() + 1
    _inferred(tmp_path / "infer", cifar, "fp32", fp32)
    _inferred(tmp_path / "infer", cifar, "int8", int8)
    (tmp_path / "w.json").write_text(json.dumps({"weights": "random", "seed": 0}))
    assert cli.main(["evaluate", MODEL, "--infer", str(tmp_path / "infer"), "--shards", str(cifar.root),
                     "--weights", str(tmp_path / "w.json"), "--out", str(tmp_path / "eval"),
                     "--info", str(tmp_path / "info")]) == 0
    ref = json.loads((tmp_path / "eval" / "fp32.json").read_text())
    got = json.loads((tmp_path / "eval" / "int8.json").read_text())
    info = json.loads((tmp_path / "info" / "int8.json").read_text())
    assert "agreement_top1" not in ref  # fp32 is the reference
    assert got["agreement_changed"] == 3 and got["agreement_top1"] == pytest.approx(100 * (1 - 3 / len(cifar)))
    assert info["agreement_changed_images"] == [cifar.names[i] for i in moved]
    assert info["precision"] == "int8" and info["precision_quant_format"] == "QDQ"
    assert got["agreement_max_abs_dlogit"] > 1 and got["agreement_cosine_min"] < got["agreement_cosine"] <= 1
    assert (fp32.argmax(1) == top1).all() and got["n_images"] == len(cifar)


def test_without_fp32_other_precisions_are_refused(cifar, tmp_path, capsys) -> None:
    import json

    from omzoo import cli

    _inferred(tmp_path / "infer", cifar, "int8", np.zeros((len(cifar), 10), np.float32))
    _inferred(tmp_path / "infer", cifar, "fp16", np.zeros((len(cifar), 10), np.float32))
    (tmp_path / "w.json").write_text(json.dumps({"weights": "random"}))
    assert cli.main(["evaluate", MODEL, "--infer", str(tmp_path / "infer"), "--shards", str(cifar.root),
                     "--weights", str(tmp_path / "w.json"), "--out", str(tmp_path / "e"), "--info",
                     str(tmp_path / "i")]) == 2
    assert "no fp32 sub-folder" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_a_users_folder_is_never_written_into(cifar, tmp_path, capsys) -> None:
    """--out and --info are folders of omzoo's own (new, empty or marked), as every folder output: a user's folder
    with a fp32.json of its own is refused and left as it was; an earlier evaluate's folder is replaced."""
    import json

    from omzoo import cli

    _inferred(tmp_path / "infer", cifar, "fp32", np.zeros((len(cifar), 10), np.float32))
    (tmp_path / "w.json").write_text(json.dumps({"weights": "random"}))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "fp32.json").write_text('{"my": "thesis results"}')
    argv = ["evaluate", MODEL, "--infer", str(tmp_path / "infer"), "--shards", str(cifar.root), "--weights",
            str(tmp_path / "w.json")]
    for out, info in ((mine, tmp_path / "info"), (tmp_path / "eval", mine)):
        assert cli.main([*argv, "--out", str(out), "--info", str(info)]) == 2
        assert f"{mine}: not empty and not written by omzoo" in capsys.readouterr().err
        assert sorted(p.name for p in mine.iterdir()) == ["fp32.json"]
        assert (mine / "fp32.json").read_text() == '{"my": "thesis results"}'
    for _ in range(2):
        assert cli.main([*argv, "--out", str(tmp_path / "eval"), "--info", str(tmp_path / "info")]) == 0
    assert json.loads((tmp_path / "eval" / "fp32.json").read_text())["n_images"] == len(cifar)
