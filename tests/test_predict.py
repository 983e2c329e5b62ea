"""`omzoo predict`: the pipeline's preprocessing and backends on the user's own images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo import zoo
from omzoo.data.readers import read_dataset
from omzoo.data.recipe import normalize
from omzoo.data.sample import write_sample
from omzoo.model import load_model
from omzoo.predict import predict

MODEL = "ran92_cifar10"


def test_predict_from_checkpoint_and_from_onnx_agree(compiled: Path, tmp_path: Path) -> None:
    write_sample(tmp_path / "s")
    cifar = tmp_path / "s" / "cifar-10-batches-py"
    by_ckpt, names, labels = predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", batch_size=16, workers=1)
    by_onnx, names2, _ = predict(MODEL, cifar, None, onnx=compiled / "m.onnx", batch_size=16, workers=1)
    dataset = read_dataset(cifar, None)
    assert names == names2 and len(names) == 64 and by_ckpt.shape == (64, 10)
    assert labels is not None and list(labels) == [item.label for item in dataset.items]
    assert np.abs(by_ckpt - by_onnx).max() < 1e-3
    spec = zoo.get(MODEL)
    with torch.no_grad():
        ref = load_model(spec, compiled / "w.pth")(torch.from_numpy(normalize(dataset.pixels(range(64)),
                                                                              spec.recipe))).numpy()
    assert np.abs(by_ckpt - ref).max() < 1e-3  # channels_last on the CPU reorders sums
    with pytest.raises(ValueError, match="exactly one of"):
        predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", onnx=compiled / "m.onnx")
