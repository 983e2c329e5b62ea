"""`omzoo sample-data`: writes the seeded sample (by default to data/sample under the working directory), and
refuses an --out that holds something else (a folder of the user's, a file) and touches nothing there; an empty
folder or its own earlier output it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import error_line, omzoo, tree

from omzoo import cli
from omzoo.data.sample import SEED_FILE as MARKER


def test_writes_the_sample_for_its_seed(sample: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    assert cli.main(["sample-data", "--out", str(out), "--seed", "3"]) == 0
    assert capsys.readouterr().err == f"wrote sample data to {out}\n"
    assert json.loads((out / MARKER).read_text()) == {"written_by": "omzoo sample-data", "seed": 3}
    files = tree(out)
    assert len(files) == 37 and files.keys() == tree(sample).keys()
    assert files != tree(sample)  # the `sample` fixture is seed 0
    assert cli.main(["sample-data", "--out", str(out), "--seed", "0"]) == 0  # its own output is replaced
    assert tree(out) == tree(sample)


def test_default_out_is_data_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sample-data"]) == 0
    assert json.loads((tmp_path / "data/sample" / MARKER).read_text())["seed"] == 0
    assert (tmp_path / "data/sample/imagenet/val_label.txt").is_file()
    assert (tmp_path / "data/sample/cifar-10-batches-py/test_batch").is_file()


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_refuses_an_out_that_omzoo_did_not_write(tmp_path: Path, kind: str) -> None:
    mine = tmp_path / "mine"
    if kind == "folder":
        mine.mkdir()
        (mine / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        reason = "not empty and not written by omzoo (no .omzoo-output of omzoo's); refusing to replace it"
    else:
        mine.write_text("notes\n")
        reason = "exists and is not a folder; refusing to replace it (choose another output)"
    before = tree(tmp_path)
    line = error_line(omzoo("sample-data", "--out", mine), "sample-data")
    assert line.startswith(f"omzoo sample-data: error: {mine}: {reason}")
    assert tree(tmp_path) == before and [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_an_empty_folder_or_its_own_output_is_written(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    for _ in range(2):  # an empty folder, then omzoo's own previous output
        r = omzoo("sample-data", "--out", out, "--seed", "1")
        assert r.returncode == 0, r.stderr
        assert len(tree(out)) == 37 and (out / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]
