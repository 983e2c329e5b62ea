"""`make bench BS=...` (omzoo sweep): sizes parsed strictly, added to params.yaml keeping its layout, bad input
refused before anything runs. The end-to-end run on a tiny pipeline is in tests/test_pipeline.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from omzoo import cli
from omzoo.stages.sweep import add_batch_sizes, parse_sizes

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "sizes"), [("32", [32]), ("1,8,32", [1, 8, 32]), (" 8 , 1 ,8", [8, 1])])
def test_sizes(text: str, sizes: list[int]) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1,,8", "8.5", " "])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        parse_sizes(text)


def test_sizes_are_added_in_either_yaml_form(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text((ROOT / "params.yaml").read_text())
    assert add_batch_sizes(flow, [32, 8]) == [32]
    assert "batch_sizes: [1, 8, 32]" in flow.read_text() and "# Batch sizes compiled" in flow.read_text()
    assert add_batch_sizes(flow, [8]) == []
    block = tmp_path / "block.yaml"
    block.write_text(yaml.safe_dump(yaml.safe_load(flow.read_text()), sort_keys=False))
    assert add_batch_sizes(block, [2]) == [2]
    assert yaml.safe_load(block.read_text())["batch_sizes"] == [1, 2, 8, 32]


@pytest.mark.parametrize(("argv", "message"), [
    (["--bs", "0"], "BS must be a positive integer"),
    (["--bs", "8", "--model", "resnet*"], "no model in params.yaml matches 'resnet*'"),
])
def test_a_bad_request_stops_before_anything_runs(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    assert cli.main(["sweep", *argv, "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert params.read_text() == (ROOT / "params.yaml").read_text()  # nothing added, nothing run
