"""The calibrate stage: int8's images come from the model's own shards, evenly spaced, with the `precision:`
settings beside them; without int8 the folder is empty and the same whatever the data (no compile re-runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo import cli
from omzoo.core import zoo
from omzoo.data import calibration
from omzoo.data.preprocess import preprocess
from omzoo.data.sample import write_sample
from omzoo.data.shards import ShardSet

MODEL = "ran92_cifar10"


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibrate")
    write_sample(root / "sample")
    preprocess(zoo.get(MODEL).recipe, root / "sample" / "cifar-10-batches-py", None, root / "shards", progress=False)
    return root / "shards"


def _run(shards: Path, out: Path, *overrides: str) -> int:
    return cli.main(["calibrate", MODEL, "--shards", str(shards), "--out", str(out),
                     *[a for o in overrides for a in ("-S", o)]])


def test_int8_gets_evenly_spaced_images_and_the_settings(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert _run(shards, out, "precisions=[fp32, int8]", "precision.calibration_images=8",
                "precision.calibration_method=Entropy") == 0
    pixels, settings = calibration.read(out)
    s = ShardSet(shards)
    index = calibration.choose(len(s), 8)
    assert pixels.shape == (8, 3, 32, 32) and np.array_equal(pixels, np.stack([s.read(i, i + 1)[0] for i in index]))
    assert settings["names"] == [s.names[i] for i in index] and settings["shards_hash"] == s.hash
    assert settings["quantization"]["calibration_method"] == "Entropy"
    assert settings["quantization"]["calibration_images"] == 8 and settings["precisions"] == ["int8"]


def test_without_int8_the_folder_does_not_depend_on_the_data(shards: Path, tmp_path: Path) -> None:
    assert _run(shards, tmp_path / "a") == 0
    assert _run(tmp_path / "no-such-shards", tmp_path / "b") == 0  # never read
    for name in (calibration.PIXELS, calibration.SETTINGS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(calibration.read(tmp_path / "a")[0]) == 0


def test_a_bad_setting_is_one_line(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(shards, tmp_path / "c", "precision.calibration_method=Median") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "precision" in err[0] and "calibration_method" in err[0]
    assert not (tmp_path / "c").exists()
