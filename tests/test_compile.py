"""`omzoo compile`: the artefact folder it writes from params.yaml's backend section and the model's options, and
what it refuses (another folder, a batch size that is not positive) in one line with nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import onnxruntime
import pytest
from cli_helpers import error_line, omzoo, tiny_onnx, tree

from omzoo import cli
from omzoo.backends.base import get_backend
from omzoo.core.provenance import FINGERPRINT, fingerprint_hash, write_fingerprint

MODEL = "ran92_cifar10"


@pytest.fixture
def params(tmp_path: Path) -> Path:
    """The onnxruntime backend on one thread, RAN-92 with the nearest-resize option (the shards are not read)."""
    path = tmp_path / "params.yaml"
    path.write_text("backend: onnxruntime\nonnxruntime: {threads: 1}\ndatasets: {cifar32: {data: d, labels: d}}\n"
                    "models: {ran92_cifar10: {pixels: cifar32, options: {nearest_resize: true}}}\n")
    return path


def _compile(tmp_path: Path, params: Path, out: Path, bs: str = "2") -> list[str | Path]:
    return ["compile", MODEL, "--bs", bs, "--onnx", tiny_onnx(tmp_path / "m.onnx"), "--out", out,
            "--params", params]


def test_compile_writes_the_artefact_and_its_meta(tmp_path: Path, params: Path, capsys) -> None:
    out = tmp_path / "c2"
    assert cli.main([str(a) for a in _compile(tmp_path, params, out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".omzoo-output", "meta.json", "model.onnx"]
    meta = json.loads((out / "meta.json").read_text())
    source = tmp_path / "m.onnx"
    assert meta == {"model": MODEL, "model_options": {"nearest_resize": True}, "backend": "onnxruntime",
                    "options": {"threads": 1}, "batch_size": 2, "precision": "fp32",
                    "precision_record": {"precision": "fp32"}, "artefact": "model.onnx",
                    "toolkit_version": onnxruntime.__version__,
                    FINGERPRINT: fingerprint_hash(get_backend("onnxruntime", {"threads": 1}).fingerprint()),
                    "sources": {str(source): hashlib.sha256(source.read_bytes()).hexdigest()}}
    graph = onnx.load(str(out / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2  # compiled for its batch size
    version = onnxruntime.__version__
    assert capsys.readouterr().out == f"{MODEL} bs2 fp32: onnxruntime {version} -> {out / 'model.onnx'}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c2", "m.onnx", "params.yaml"]  # no temp folder left


def test_compile_refuses_a_toolkit_file_of_another_toolkit(tmp_path: Path, params: Path) -> None:
    """The toolkit stage's file is from before an in-place upgrade: compiling now would label the artefact with the
    old toolkit, so nothing is written."""
    mine = get_backend("onnxruntime", {"threads": 1}).fingerprint()
    write_fingerprint(tmp_path / "toolkit.json", mine)
    out = tmp_path / "c2"
    argv = [str(a) for a in _compile(tmp_path, params, out)]
    assert cli.main([*argv, "--toolkit", str(tmp_path / "toolkit.json")]) == 0
    assert json.loads((out / "meta.json").read_text())[FINGERPRINT] == fingerprint_hash(mine)
    write_fingerprint(tmp_path / "toolkit.json", {**mine, "runtime_version": "0.1"})
    before = (out / "meta.json").read_bytes()
    assert cli.main([*argv, "--toolkit", str(tmp_path / "toolkit.json")]) == 2
    assert (out / "meta.json").read_bytes() == before


def test_compile_replaces_its_own_artefact_but_no_other_folder(tmp_path: Path, params: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("a,b\n")
    before = tree(mine)
    line = error_line(omzoo(*_compile(tmp_path, params, mine)), "compile")
    assert line == (f"omzoo compile: error: {mine}: not empty and not written by omzoo (no .omzoo-output of omzoo's); "
                    "refusing to replace it or write into it. Choose an output folder that is new, empty or an earlier "
                    "omzoo output")
    assert tree(mine) == before
    out = tmp_path / "c4"
    for _ in range(2):  # a new folder, then its own earlier artefact: both written
        assert cli.main([str(a) for a in _compile(tmp_path, params, out, bs="4")]) == 0
        assert json.loads((out / "meta.json").read_text())["batch_size"] == 4


@pytest.mark.parametrize("bs", ["0", "-3", "two"])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(tmp_path: Path, params: Path, bs: str) -> None:
    r = omzoo(*_compile(tmp_path, params, tmp_path / "c", bs=bs))
    line = error_line(r, "compile")
    want = f"argument --bs: batch size must be a positive integer, got '{bs}'"
    assert r.returncode == 2 and line.endswith(want), line
    assert not (tmp_path / "c").exists()
