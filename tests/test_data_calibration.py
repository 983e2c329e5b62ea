"""Calibration folders: evenly spaced images, both files committed together, and a broken folder named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo.core.io import NotOurs
from omzoo.data import calibration


def test_choose_spreads_the_images_over_the_set() -> None:
    assert calibration.choose(10, 4) == [0, 3, 6, 9]
    assert calibration.choose(3, 8) == [0, 1, 2]  # fewer images than asked: all of them
    assert calibration.choose(100, 1) == [0]
    assert len(calibration.choose(1000, 32)) == 32


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    pixels = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    calibration.write(tmp_path / "c", pixels, {"names": ["a", "b"], "precisions": ["int8"]})
    got, settings = calibration.read(tmp_path / "c")
    assert np.array_equal(got, pixels) and settings["names"] == ["a", "b"]


def test_a_broken_folder_is_one_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a calibration folder"):
        calibration.read(tmp_path)
    calibration.write(tmp_path / "c", np.zeros((2, 3, 4, 4), np.uint8), {"names": ["a"]})  # one name, two images
    with pytest.raises(ValueError, match=r"c/pixels.npy: holds uint8 \[2, 3, 4, 4\], not the 1 uint8"):
        calibration.read(tmp_path / "c")


def test_a_users_folder_is_never_replaced(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    with pytest.raises(NotOurs):
        calibration.write(mine, np.zeros((0, 3, 4, 4), np.uint8), {"names": []})
    assert (mine / "thesis.tex").read_text() == "x"
