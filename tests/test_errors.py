"""core/errors.py: what a backend signals to the CLI, and what the CLI makes of it (exit status, one line, a rerun
in the environment asked for)."""

from __future__ import annotations

import sys
import types

import pytest

from omzoo import cli
from omzoo.core.errors import BackendUnavailable, RestartInEnvironment


@pytest.fixture
def verb(monkeypatch: pytest.MonkeyPatch):
    """A registered verb whose run() raises what the test puts in `raised`."""
    raised: list[BaseException] = []
    module = types.ModuleType("omzoo_test_verb")
    module.HELP = "raises"
    module.add_arguments = lambda p: None

    def run(args) -> int:
        raise raised[0]

    module.run = run
    monkeypatch.setitem(sys.modules, "omzoo_test_verb", module)
    monkeypatch.setitem(cli.VERBS, "raise", "omzoo_test_verb")
    monkeypatch.setitem(cli.READS, "raise", ())
    return raised


def test_an_unavailable_backend_is_one_line_and_exit_2(verb, capsys) -> None:
    verb.append(BackendUnavailable("onnxruntime missing: pip install onnxruntime"))
    assert cli.main(["raise"]) == 2
    assert capsys.readouterr().err == "omzoo raise: error: onnxruntime missing: pip install onnxruntime\n"


def test_a_restart_reruns_the_command_with_its_environment_once(verb, monkeypatch, capsys) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(cli, "_rerun", lambda argv, env: seen.append((argv, env)) or 7)
    verb.append(RestartInEnvironment("needs LD_LIBRARY_PATH", {"LD_LIBRARY_PATH": "/cann/lib"}))
    monkeypatch.delenv(cli._RERUN_VAR, raising=False)
    assert cli.main(["raise"]) == 7  # the child's status is the command's
    assert seen == [(["raise"], {"LD_LIBRARY_PATH": "/cann/lib", cli._RERUN_VAR: "1"})]
    monkeypatch.setenv(cli._RERUN_VAR, "1")  # already the rerun: no loop, one line
    assert cli.main(["raise"]) == 2
    assert "still not in the environment the backend needs after a rerun: needs LD_LIBRARY_PATH" in \
        capsys.readouterr().err
    assert len(seen) == 1
