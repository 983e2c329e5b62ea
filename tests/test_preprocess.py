"""`omzoo preprocess`: the embedded sample into uint8 shards of the pixels named by --pixels, with params.yaml's
shard size; a --pixels no model reads is one error line and nothing written; a bad file fails the run unless
`preprocess.skip_bad` is set; an --out at an input or at a folder omzoo did not write is refused and deletes
nothing, its own earlier output is replaced."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import error_line, omzoo, tree

from omzoo import cli
from omzoo.data.shards import ShardSet

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


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


def test_bad_inputs_are_one_error_or_skipped_by_hand(sample: Path, tmp_path: Path, capsys) -> None:
    """A bad file fails the run (exit 2, the file named, nothing written); `-S preprocess.skip_bad=true` skips it
    and lists it, with no params file of one's own (what `preprocess --skip-bad` was)."""
    shutil.copytree(sample / "imagenet", tmp_path / "imagenet")
    val = tmp_path / "imagenet" / "val"
    (val / "notes.JPEG").write_text("not an image")
    argv = ["preprocess", "--pixels", "bilinear224", "--data", str(val), "--labels", str(val.parent / "val_label.txt"),
            "--out", str(tmp_path / "o"), "--quiet", "--workers", "1", "--params", str(PARAMS)]
    assert cli.main(argv) == 2 and not (tmp_path / "o").exists()
    err = capsys.readouterr().err
    assert "1 bad input(s)" in err and "notes.JPEG" in err
    assert cli.main([*argv, "-S", "preprocess.skip_bad=true", "-S", "preprocess.shard_size=4"]) == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["n_skipped"] == 1 and manifest["skipped"][0]["name"] == "notes.JPEG"
    assert {s["count"] for s in manifest["shards"][:-1]} == {4}
    assert capsys.readouterr().err == f"32 images, 1 skipped -> {tmp_path / 'o'} (8 shards, bilinear224)\n"


@pytest.fixture
def user_data(sample: Path, tmp_path: Path) -> Path:
    """A user's ImageNet folder: val/, val_label.txt and an unrelated file, as `make link-data` would point at."""
    root = tmp_path / "imagenet"
    shutil.copytree(sample / "imagenet", root)
    (root / "notes.txt").write_text("my notes, not a dataset file\n")
    return root


@pytest.mark.parametrize("where", ["data folder", "its parent", "working directory"])
def test_cli_out_at_an_input_is_refused_and_deletes_nothing(user_data: Path, tmp_path: Path, where: str):
    before = tree(tmp_path)
    out, cwd = {"data folder": (user_data / "val", tmp_path), "its parent": (user_data, tmp_path),
                "working directory": (Path("."), user_data)}[where]
    r = omzoo("preprocess", "--pixels", "bilinear224", "--data", user_data / "val", "--labels",
              user_data / "val_label.txt", "--out", out, "--quiet", "--params", PARAMS, cwd=cwd)
    line = error_line(r, "preprocess")
    why = "names no file or folder of its own" if where == "working directory" else "the input --data"
    assert r.returncode == 2 and f"--out {out}: " in line and why in line
    assert tree(tmp_path) == before  # every input file still there, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenet"]  # no temp folder either


def test_cli_out_at_a_foreign_folder_is_refused_and_own_output_is_replaced(user_data: Path, sample: Path,
                                                                            tmp_path: Path):
    cifar = tmp_path / "cifar"
    shutil.copytree(sample / "cifar-10-batches-py", cifar)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("\\documentclass{article}\n")
    before = tree(tmp_path)

    def run(out: Path) -> subprocess.CompletedProcess[str]:
        return omzoo("preprocess", "--pixels", "cifar32", "--data", cifar, "--out", out, "--quiet", "--params", PARAMS)

    line = error_line(run(tmp_path / "mine"), "preprocess")
    assert "mine: not empty and not written by omzoo (no .omzoo-output of omzoo's); refusing to replace it" in line
    assert tree(tmp_path) == before
    for _ in range(2):  # a new folder, then omzoo's own previous output: both written
        r = run(tmp_path / "shards")
        assert r.returncode == 0, r.stderr
        assert ShardSet(tmp_path / "shards").manifest["count"] == 64
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith("shards/")} == before
