"""The infer stage: logits in dataset order, a progress bar on stderr, and predictions.json (names, labels, top-1
class), the one small file per revision `omzoo compare` reads to name the images whose prediction changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omzoo import cli
from omzoo.backends.artefact import load_compiled
from omzoo.core import paths, zoo
from omzoo.core.provenance import FINGERPRINT
from omzoo.data.preprocess import preprocess
from omzoo.data.sample import write_sample
from omzoo.data.shards import ShardSet


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample's 64 CIFAR images as a shard set."""
    root = tmp_path_factory.mktemp("infer")
    write_sample(root / "sample")
    out = root / "shards"
    preprocess(zoo.get("ran92_cifar10").recipe, root / "sample" / "cifar-10-batches-py", None, out, progress=False)
    return out


def test_infer_writes_predictions_with_names_and_labels(compiled: Path, shards: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "infer"
    args = ["infer", "--compiled", str(compiled / "c4"), "--shards", str(shards), "--out", str(out)]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "infer ran92_cifar10" in err and "64/64" in err  # the progress bar, on stderr
    s = ShardSet(shards)
    out = out / "fp32"  # one sub-folder per precision
    logits = np.load(out / "logits.npy")
    assert logits.shape == (64, 10) and logits.dtype == np.float32 and not (out / "top5.npy").exists()
    predictions = json.loads((out / paths.PREDICTIONS).read_text())
    fingerprint = load_compiled(compiled / "c4")[0].checked_fingerprint()
    assert predictions == {"model": "ran92_cifar10", "backend": "onnxruntime", "precision": "fp32",
                           "precision_record": {"precision": "fp32"}, "shards_hash": s.hash,
                           FINGERPRINT: fingerprint, "names": s.names, "labels": s.labels.tolist(),
                           "predicted": logits.argmax(1).tolist()}
    assert json.loads((out / "infer.json").read_text())["shards_hash"] == s.hash
    assert json.loads((out / "infer.json").read_text())[FINGERPRINT] == fingerprint
    assert len(s.names) == 64 == len(set(s.names))


def test_quiet_infer_has_no_progress_bar(compiled: Path, shards: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = ["infer", "--compiled", str(compiled / "c4"), "--shards", str(shards), "--out", str(tmp_path), "--quiet"]
    assert cli.main(args) == 0
    assert capsys.readouterr().err == ""
