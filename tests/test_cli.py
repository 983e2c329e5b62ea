"""The `omzoo` command: one subcommand per verb with --help, and errors as one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import error_line, omzoo

from omzoo import cli
from omzoo.core import zoo
from omzoo.core.model import random_checkpoint
from omzoo.data.sample import write_sample

MODEL = "ran92_cifar10"
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: omzoo " + verb in capsys.readouterr().out


def test_unknown_verb_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_reports_library_errors_without_traceback(tmp_path: Path) -> None:
    params = Path(__file__).resolve().parents[1] / "params.yaml"
    r = subprocess.run([sys.executable, "-m", "omzoo.cli", "weights", MODEL, "--out", str(tmp_path / "w.pth"),
                        "--checkpoint", str(tmp_path / "missing.pth"), "--params", str(params)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "omzoo weights: error:" in r.stderr and "missing.pth: no such checkpoint file" in r.stderr
    assert "Traceback" not in r.stderr


def test_unexpected_errors_are_one_line_too(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """A bug still ends as one line naming the exception (the traceback only on request)."""
    import omzoo.stages.models

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(omzoo.stages.models, "run", boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "omzoo models: error: KeyError: 'surprise'"


def test_a_text_file_as_checkpoint_is_one_line_naming_it(tmp_path: Path) -> None:
    text = tmp_path / "model_best.pth.tar"
    text.write_text("<html>404 Not Found</html>\n")  # what a failed download saves
    line = error_line(omzoo("weights", MODEL, "--checkpoint", text, "--out", tmp_path / "w.pth"), "weights")
    assert line == (f"omzoo weights: error: {text}: cannot be read as a torch checkpoint (not a zip archive or a "
                    "pickle, which is what torch.save writes; it starts with b'<html>404 Not Fo')")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_best.pth.tar"]


def test_an_unknown_model_is_one_line_naming_the_key(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text().replace("  ran92_cifar10: {", "  ran92_cifar100: {"))
    line = error_line(omzoo("weights", MODEL, "--out", tmp_path / "w.pth", "--params", params), "weights")
    assert line.startswith(f"omzoo weights: error: {params}: models.ran92_cifar100: unknown model 'ran92_cifar100'; ")
    line = error_line(omzoo("weights", "ran92", "--out", tmp_path / "w.pth", "--params", PARAMS), "weights")
    assert line.startswith("omzoo weights: error: unknown model 'ran92'; registered: scnet50_v1d, ")


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "w.pth"
    random_checkpoint(zoo.get(MODEL), path)
    return path


@pytest.mark.parametrize("verb", ["weights", "export", "preprocess"])
def test_a_full_disk_is_one_line_naming_the_output(tmp_path: Path, verb: str, random_weights: Path) -> None:
    """Every file is capped at 64 KiB (RLIMIT_FSIZE): the writes fail as on a full disk, the output is named."""
    write_sample(tmp_path / "s")
    out = tmp_path / "out" / {"weights": "w.pth", "export": "m.onnx", "preprocess": "shards"}[verb]
    args = {"weights": ["weights", MODEL, "--out", out],
            "export": ["export", MODEL, "--checkpoint", random_weights, "--output", out],
            "preprocess": ["preprocess", "--pixels", "cifar32", "--data", tmp_path / "s/cifar-10-batches-py",
                           "--out", out, "--quiet"]}[verb]
    line = error_line(omzoo(*args, "--params", PARAMS, max_file_bytes=64 << 10), verb)
    assert line == f"omzoo {verb}: error: {out}: cannot write: File too large"
    assert list(out.parent.iterdir()) == []  # neither the output nor a temp file is left
