"""`omzoo preprocess`: the embedded sample into uint8 shards of the pixels named by --pixels, with params.yaml's
shard size; a --pixels no model reads is one error line and nothing written."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import error_line, omzoo, tree

from omzoo import cli
from omzoo.data.shards import ShardSet


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text("preprocess: {shard_size: 16}\n")
    return path


def _preprocess(pixels: str, data: Path, out: Path, params: Path, labels: Path | None = None) -> int:
    flags = ["--labels", str(labels)] if labels else []
    return cli.main(["preprocess", "--pixels", pixels, "--data", str(data), *flags, "--out", str(out),
                     "--workers", "1", "--quiet", "--params", str(params)])


def test_cifar_sample_becomes_shards_of_the_params_shard_size(sample: Path, tmp_path: Path, params: Path,
                                                              capsys) -> None:
    cifar, out = sample / "cifar-10-batches-py", tmp_path / "shards"
    assert _preprocess("cifar32", cifar, out, params, cifar) == 0
    assert capsys.readouterr().err == f"64 images -> {out} (4 shards, cifar32)\n"
    shards = ShardSet(out)
    shards.verify()
    assert shards.pixels == "cifar32" and shards.shape == (3, 32, 32)
    assert [s["count"] for s in shards.manifest["shards"]] == [16, 16, 16, 16]
    batch = pickle.loads((cifar / "test_batch").read_bytes(), encoding="bytes")
    np.testing.assert_array_equal(shards.read(0, 64), batch[b"data"].reshape(64, 3, 32, 32))
    assert shards.labels.tolist() == batch[b"labels"]
    # --labels naming the data folder itself means "the labels live in the data", as when it is left out
    assert _preprocess("cifar32", cifar, tmp_path / "again", params) == 0
    assert tree(tmp_path / "again") == tree(out)


def test_imagenet_sample_is_made_with_the_recipe_that_pixels_names(sample: Path, tmp_path: Path,
                                                                   params: Path) -> None:
    val, labels = sample / "imagenet/val", sample / "imagenet/val_label.txt"
    for pixels in ("bilinear224", "bicubic224"):
        assert _preprocess(pixels, val, tmp_path / pixels, params, labels) == 0
    bilinear, bicubic = ShardSet(tmp_path / "bilinear224"), ShardSet(tmp_path / "bicubic224")
    expected = dict(line.split() for line in labels.read_text().splitlines())
    for shards, pixels in ((bilinear, "bilinear224"), (bicubic, "bicubic224")):
        assert shards.pixels == pixels and len(shards) == 32 and shards.shape == (3, 224, 224)
        assert shards.names == sorted(expected) and shards.labels.tolist() == [int(expected[n]) for n in shards.names]
    assert not np.array_equal(bilinear.read(0, 32), bicubic.read(0, 32))  # the interpolation differs


def test_a_pixels_name_no_model_reads_is_one_line(sample: Path, tmp_path: Path, params: Path) -> None:
    cifar = sample / "cifar-10-batches-py"
    r = omzoo("preprocess", "--pixels", "bilinear256", "--data", cifar, "--out", tmp_path / "shards", "--quiet",
              "--params", params)
    assert error_line(r, "preprocess") == ("omzoo preprocess: error: unknown pixels 'bilinear256': no registered "
                                           "model reads them (known: bicubic224, bilinear224, cifar32)")
    assert r.returncode == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
