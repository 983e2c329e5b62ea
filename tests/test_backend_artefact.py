"""Compiled artefact directories: written whole or not at all, opened by meta.json, pinned to a toolkit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from omzoo.backends.artefact import ToolkitMismatch, compile_artefact, load_compiled
from omzoo.backends.base import run_shards
from omzoo.core import zoo
from omzoo.core.io import NotOurs, sha256_file
from omzoo.core.model import load_model
from omzoo.core.recipe import normalize

MODEL = "ran92_cifar10"


def test_compiled_ort_artefact_matches_torch_and_pads_the_last_batch(compiled: Path) -> None:
    backend, meta = load_compiled(compiled / "c4")
    assert meta["batch_size"] == 4 and backend.input_spec() == ((4, 3, 32, 32), np.dtype(np.uint8))
    pixels = np.random.default_rng(0).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)

    class Shards:
        root = compiled

        def __len__(self) -> int:
            return 7

        def iter_batches(self, bs: int):
            return (pixels[i:i + bs] for i in range(0, 7, bs))

    logits, timing = run_shards(backend, Shards(), 4)
    spec = zoo.get(MODEL)
    model = load_model(spec, compiled / "w.pth")
    with torch.no_grad():
        ref = model(torch.from_numpy(normalize(pixels, spec.recipe))).numpy()
    assert logits.shape == (7, 10) and timing["n_images"] == 7
    assert np.abs(logits - ref).max() < 1e-3


def test_the_meta_names_the_installed_toolkit_and_every_source(compiled: Path) -> None:
    meta = json.loads((compiled / "c4" / "meta.json").read_text())
    assert meta["toolkit_version"] == onnxruntime.__version__ and meta["backend"] == "onnxruntime"
    assert meta["sources"] == {str(compiled / f): sha256_file(compiled / f) for f in ("m.onnx", "w.pth")}


def test_toolkit_branch_must_match_the_installed_runtime(compiled: Path, tmp_path: Path) -> None:
    with pytest.raises(ToolkitMismatch, match="toolkit.version is '0.0.1' but this machine has onnxruntime"):
        compile_artefact(zoo.get(MODEL), 1, tmp_path / "c1", "onnxruntime", {}, "0.0.1", onnx=compiled / "m.onnx")
    assert not (tmp_path / "c1").exists()


def test_a_failed_compile_keeps_the_previous_artefact(compiled: Path, tmp_path: Path) -> None:
    out = tmp_path / "c4"
    compile_artefact(zoo.get(MODEL), 4, out, "onnxruntime", {}, onnx=compiled / "m.onnx")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(Exception):  # noqa: B017 - whatever onnx raises; the point is what is left behind
        compile_artefact(zoo.get(MODEL), 4, out, "onnxruntime", {}, onnx=broken)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx", "c4"]  # no temp directory left


def test_model_options_reach_the_loaded_backend(compiled: Path, tmp_path: Path) -> None:
    """RAN-92's nearest_resize changes its logits; the torch backend must run the model with the branch's option
    (it used to build the registry default), and compile records the options in meta.json."""
    spec = zoo.get(MODEL).with_options({"nearest_resize": True})
    compile_artefact(spec, 4, tmp_path / "t", "torch", {"device": "cpu", "channels_last": False},
                     checkpoint=compiled / "w.pth")
    backend, meta = load_compiled(tmp_path / "t")
    assert meta["model_options"] == {"nearest_resize": True}
    pixels = np.random.default_rng(3).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    x = torch.from_numpy(normalize(pixels, spec.recipe))
    with torch.no_grad():
        nearest = load_model(spec, compiled / "w.pth")(x).numpy()
        default = load_model(zoo.get(MODEL), compiled / "w.pth")(x).numpy()
    assert np.abs(nearest - default).max() > 1e-2  # the option matters on these inputs
    np.testing.assert_allclose(backend.run(backend.feed(pixels)), nearest, atol=1e-4, rtol=0)


def test_compile_never_replaces_a_folder_it_did_not_write(compiled: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("a,b\n")
    with pytest.raises(NotOurs, match="not empty and not written by omzoo \\(no .omzoo-output of omzoo.s\\)"):
        compile_artefact(zoo.get(MODEL), 4, mine, "onnxruntime", {}, onnx=compiled / "m.onnx")
    assert [p.name for p in mine.iterdir()] == ["results.csv"]
