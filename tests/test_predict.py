"""`omzoo predict`: the pipeline's preprocessing and backends on the user's own images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cli_helpers import error_line, omzoo, tiny_onnx
from PIL import Image

from omzoo import cli
from omzoo.core import zoo
from omzoo.core.model import load_model
from omzoo.core.recipe import normalize
from omzoo.data.readers import read_dataset
from omzoo.data.sample import write_sample
from omzoo.stages.predict import predict

MODEL = "ran92_cifar10"


def test_predict_from_checkpoint_and_from_onnx_agree(compiled: Path, tmp_path: Path) -> None:
    write_sample(tmp_path / "s")
    cifar = tmp_path / "s" / "cifar-10-batches-py"
    by_ckpt, names, labels, skipped = predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", batch_size=16,
                                              workers=1)
    by_onnx, names2, _, _ = predict(MODEL, cifar, None, onnx=compiled / "m.onnx", batch_size=16, workers=1)
    dataset = read_dataset(cifar, None)
    assert names == names2 and len(names) == 64 and by_ckpt.shape == (64, 10) and skipped == []
    assert labels is not None and list(labels) == [item.label for item in dataset.items]
    assert np.abs(by_ckpt - by_onnx).max() < 1e-3
    spec = zoo.get(MODEL)
    with torch.no_grad():
        ref = load_model(spec, compiled / "w.pth")(torch.from_numpy(normalize(dataset.pixels(range(64)),
                                                                              spec.recipe))).numpy()
    assert np.abs(by_ckpt - ref).max() < 1e-3  # channels_last on the CPU reorders sums
    with pytest.raises(ValueError, match="exactly one of"):
        predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", onnx=compiled / "m.onnx")


def _photos(folder: Path) -> list[str]:
    """Six 32x32 images as users have them: PNG, JPEG, GIF, JFIF (a JPEG), BMP, WebP."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = []
    for name, fmt in [("a.png", "PNG"), ("b.jpg", "JPEG"), ("c.gif", "GIF"), ("d.jfif", "JPEG"), ("e.bmp", "BMP"),
                      ("f.webp", "WEBP")]:
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / name, format=fmt)
        names.append(name)
    return names


def test_cli_predict_reads_every_file_or_says_which_it_did_not(tmp_path: Path) -> None:
    """6 files in, 6 rows out (GIF and JFIF included); a file it cannot read stops it, or --skip-bad lists it."""
    names = _photos(tmp_path / "photos")
    onnx = tiny_onnx(tmp_path / "tiny.onnx")
    r = omzoo("predict", MODEL, "--onnx", onnx, "--data", tmp_path / "photos", "--out", tmp_path / "a.npy",
              "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "a.npy").shape == (6, 10)
    assert [line.split(":")[0] for line in r.stdout.splitlines()[:6]] == names
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "g.png").write_bytes(b"truncated")
    line = error_line(omzoo("predict", MODEL, "--onnx", onnx, "--data", tmp_path / "photos", "--out",
                            tmp_path / "b.npy", "--workers", "1"), "predict")
    assert "2 bad input(s)" in line and "--skip-bad skips them" in line and not (tmp_path / "b.npy").exists()
    r = omzoo("predict", MODEL, "--onnx", onnx, "--data", tmp_path / "photos", "--out", tmp_path / "b.npy",
              "--workers", "1", "--skip-bad")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "b.npy").shape == (6, 10) and "6 images, 2 skipped" in r.stdout
    assert "skipped g.png: cannot decode image" in r.stderr and "skipped notes.txt: not an image file" in r.stderr


def test_predict_refuses_an_onnx_of_another_model_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ONNX file is checked against the model (input name, C, H, W, classes, a fixed batch) before any image."""
    _photos(tmp_path / "photos")
    cases = {tiny_onnx(tmp_path / "cifar.onnx"): ("scnet50_v1d", "not a graph of scnet50_v1d, which takes one "
                                                  "input input [N, 3, 224, 224] uint8 or float32 and [N, 1000]"),
             tiny_onnx(tmp_path / "64px.onnx", size=64): (MODEL, "this one takes image ['N', 3, 64, 64]"),
             tiny_onnx(tmp_path / "100.onnx", classes=100): (MODEL, "gives class ['N', 100]"),
             tiny_onnx(tmp_path / "named.onnx", input_name="x"): (MODEL, "this one takes x ['N', 3, 32, 32]"),
             tiny_onnx(tmp_path / "bs1.onnx", batch=1): (MODEL, "its batch size is fixed at 1, not 16")}
    for path, (model, message) in cases.items():
        assert cli.main(["predict", model, "--onnx", str(path), "--data", str(tmp_path / "photos"), "--out",
                         str(tmp_path / "out.npy")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"omzoo predict: error: {path}: ") and message in err, err
    assert not (tmp_path / "out.npy").exists()


def test_predict_names_the_file_onnx_runtime_fails_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ORT's InvalidProtobuf and run-time errors name no file: predict's line names it and the expected input."""
    _photos(tmp_path / "photos")
    text = tmp_path / "model.onnx"
    text.write_text("this is not a protobuf\n")
    broken = tiny_onnx(tmp_path / "broken.onnx")
    model = onnx.load(str(broken))  # a graph ORT loads but cannot run: a reshape to a size that never fits
    model.graph.node[-1].output[0] = "logits"
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([7, -1], np.int64), "shape"))
    model.graph.node.append(onnx.helper.make_node("Reshape", ["logits", "shape"], ["class"]))
    onnx.save(model, str(broken))
    for path, message in [(text, "ONNX Runtime cannot load it as a model (INVALID_PROTOBUF: "),
                          (broken, "ONNX Runtime failed on a uint8 batch of shape [16, 3, 32, 32], the model takes "
                                   "image [16, 3, 32, 32] uint8 (")]:
        assert cli.main(["predict", MODEL, "--onnx", str(path), "--data", str(tmp_path / "photos"), "--out",
                         str(tmp_path / "out.npy")]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"omzoo predict: error: {path}: {message}"), err


def test_cli_predict_fails_by_name_on_non_finite_logits(tmp_path: Path) -> None:
    _photos(tmp_path / "photos")
    nan = tiny_onnx(tmp_path / "nan.onnx", weight=float("nan"))
    line = error_line(omzoo("predict", MODEL, "--onnx", nan, "--data", tmp_path / "photos", "--out",
                            tmp_path / "out.npy"), "predict")
    assert line == (f"omzoo predict: error: {nan}: the model gave non-finite logits (NaN or inf) for 6 of 6 images; "
                    "check the weights it was made from")
    assert not (tmp_path / "out.npy").exists()
