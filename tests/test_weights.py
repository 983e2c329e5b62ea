"""The weights stage: seeded random weights in the published container, or a published file verified."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omzoo.core import zoo
from omzoo.core.io import sha256_file
from omzoo.core.model import random_checkpoint
from omzoo.stages.weights import materialise

MODEL = "ran92_cifar10"


def test_random_weights_are_deterministic_and_marked(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    random_checkpoint(zoo.get(MODEL), a, seed=3)
    info = materialise(zoo.get(MODEL), b, None, seed=3)
    sa, sb = (torch.load(p, weights_only=False, map_location="cpu") for p in (a, b))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert info["weights"] == "random" and info["seed"] == 3 and info["sha256"] == sha256_file(b)


def test_published_checkpoint_is_verified_and_copied(tmp_path: Path) -> None:
    src = tmp_path / "model_92_sgd.pkl"
    random_checkpoint(zoo.get(MODEL), src, seed=1)
    info = materialise(zoo.get(MODEL), tmp_path / "out.pth", src, seed=0)
    assert info["weights"] == "published" and info["sha256"] == sha256_file(src)
    with pytest.raises(ValueError, match="does not fit"):
        materialise(zoo.get("tresnet_m"), tmp_path / "bad.pth", src, seed=0)
    assert not (tmp_path / "bad.pth").exists()
