"""The `omzoo` command: one subcommand per verb with --help, and errors as one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from omzoo import cli

MODEL = "ran92_cifar10"


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
    import omzoo.models

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(omzoo.models, "run", boom)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "omzoo models: error: KeyError: 'surprise'"
