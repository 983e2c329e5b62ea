"""AMCT's calibration input (the whole int8 flow on the fake CANN tree is in test_backend_acl.py): the images as the
graph takes them, in batches, and what is kept once atc has run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo.backends.ascend import amct
from omzoo.core import zoo
from omzoo.core.recipe import normalize

SPEC = zoo.get("ran92_cifar10")


def _pixels(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, *SPEC.input_size), dtype=np.uint8)


def test_a_float_graph_gets_the_recipes_normalisation_in_batches() -> None:
    pixels = _pixels(70)
    batches = amct.calibration_batches(pixels, SPEC.input_size, SPEC.recipe, float_input=True)
    assert [len(b) for b in batches] == [24, 23, 23] and all(len(b) <= amct.BATCH for b in batches)
    assert np.array_equal(np.concatenate(batches), normalize(pixels, SPEC.recipe))


def test_a_uint8_graph_gets_the_pixels_as_they_are() -> None:
    pixels = _pixels(5)
    (batch,) = amct.calibration_batches(pixels, SPEC.input_size, SPEC.recipe, float_input=False)
    assert batch.dtype == np.uint8 and np.array_equal(batch, pixels)


@pytest.mark.parametrize("pixels", [None, np.zeros((0, 3, 32, 32), np.uint8), np.zeros((2, 3, 16, 16), np.uint8),
                                    np.zeros((2, 3, 32, 32), np.float32)])
def test_missing_or_wrong_calibration_is_one_line(pixels) -> None:
    with pytest.raises(ValueError, match=r"int8 needs the calibration images as uint8 NCHW \[N, 3, 32, 32\]") as e:
        amct.calibration_batches(pixels, SPEC.input_size, SPEC.recipe, float_input=True)
    assert "\n" not in str(e.value)


def test_only_the_large_files_are_dropped(tmp_path: Path) -> None:
    for name in ("calibration_0000.npy", "m_deploy_model.onnx", "config.json", "amct.stderr", "job.json"):
        (tmp_path / name).write_text("x")
    amct.drop_large(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amct.stderr", "config.json", "job.json"]
