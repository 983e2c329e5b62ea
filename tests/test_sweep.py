"""`make bench BS=...` (omzoo sweep): sizes parsed strictly, added to params.yaml keeping its layout, bad input
refused before anything runs, params.yaml read once. The end-to-end run on a tiny pipeline is in
tests/test_pipeline.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from omzoo import cli
from omzoo.core import io
from omzoo.core.params import Params, batch_size_list, load_params
from omzoo.stages import sweep
from omzoo.stages.sweep import add_batch_sizes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "sizes"), [("32", [32]), ("1,8,32", [1, 8, 32]), (" 8 , 1 ,8", [8, 1])])
def test_sizes(text: str, sizes: list[int]) -> None:
    assert batch_size_list(text, "BS") == sizes


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1,,8", "8.5", " ", "1,5000"])
def test_bad_sizes(text: str) -> None:
    want = f"BS must be a positive integer up to 4096 or a list like 1,8,32, got '{text}'"
    with pytest.raises(ValueError, match=want):
        batch_size_list(text, "BS")


def test_sizes_are_added_in_either_yaml_form(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text((ROOT / "params.yaml").read_text())
    edited, added = add_batch_sizes(load_params(flow), [32, 8])
    assert added == [32] and edited.batch_sizes == [1, 8, 32]
    assert "batch_sizes: [1, 8, 32]" in flow.read_text() and "# Batch sizes compiled" in flow.read_text()
    assert add_batch_sizes(load_params(flow), [8])[1] == []
    block = tmp_path / "block.yaml"
    block.write_text(yaml.safe_dump(yaml.safe_load(flow.read_text()), sort_keys=False))
    assert add_batch_sizes(load_params(block), [2])[1] == [2]
    assert yaml.safe_load(block.read_text())["batch_sizes"] == [1, 2, 8, 32]


def test_an_edit_that_would_break_the_file_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before = path.read_text()
    params = load_params(path)
    broken = params.text.replace("backend: onnxruntime", "toolkit: {version: 1.3}", 1)  # a second toolkit:
    with pytest.raises(ValueError, match='found duplicate key "toolkit"'):
        add_batch_sizes(Params(params.raw, path, broken), [2])
    assert path.read_text() == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--bs", "0"], "BS must be a positive integer"),
    (["--bs", "8", "--model", "resnet*"], "no model in params.yaml matches 'resnet*'"),
    (["--bs", "8", "-S", "bench.min_s=5"], "-S bench.min_s=5: sweep runs its stages through `dvc repro`"),
])
def test_a_bad_request_stops_before_anything_runs(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    assert cli.main(["sweep", *argv, "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert params.read_text() == (ROOT / "params.yaml").read_text()  # nothing added, nothing run


def test_params_yaml_is_read_once(tmp_path: Path, monkeypatch, capsys) -> None:
    """One read, however many places look at the params (sizes, models, the edit, the table)."""
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    reads: list[Path] = []
    real = io.open_regular

    def counting(path, *args, **kwargs):
        if Path(path).name == "params.yaml":
            reads.append(Path(path))
        return real(path, *args, **kwargs)

    runs: list[list[str]] = []
    monkeypatch.setattr(io, "open_regular", counting)
    monkeypatch.setattr(sweep.subprocess, "run", lambda argv, **_: runs.append(argv) or
                        subprocess.CompletedProcess(argv, 0))
    assert cli.main(["sweep", "--bs", "4", "--model", "ran92*", "--params", str(path)]) == 0
    assert reads == [path]
    assert runs and runs[0][-1] == "bench@ran92_cifar10-4-fp32"
    assert yaml.safe_load(path.read_text())["batch_sizes"] == [1, 4, 8]
    assert "| ran92_cifar10 " in capsys.readouterr().out
