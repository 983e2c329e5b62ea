"""Making a revision runnable for abtest (omzoo.results.worktree): worktrees keyed by commit and params, the marker
that keeps omzoo off folders it did not make, the workspace snapshot that touches nothing, and environments built
by the revision's own `make setup` (slow: two onnxruntime pins side by side)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dvc_helpers import pipeline_env, sh, tiny_checkout
from git_helpers import commit, git, new_repo

from omzoo.core.io import MARKER, owned
from omzoo.results import worktree
from omzoo.results.worktree import SetupError, environment, prepare, source_commit


def test_a_worktree_is_made_once_marked_and_reset_when_reused(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    sha = commit(repo, {"params.yaml": "models: {}\n", "a.txt": "one\n"})
    log = tmp_path / "setup.log"
    path = worktree.worktree(sha, "", log)
    assert path == (repo / ".omzoo" / "abtest" / "worktrees" / sha[:12]).absolute()
    assert (path / "a.txt").read_text() == "one\n" and owned(path)
    (path / "a.txt").write_text("scribbled\n")
    assert worktree.worktree(sha, "", log) == path and (path / "a.txt").read_text() == "one\n"
    assert "worktree add" in log.read_text()


def test_a_folder_omzoo_did_not_make_is_never_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    sha = commit(repo, {"params.yaml": "models: {}\n"})
    foreign = repo / ".omzoo" / "abtest" / "worktrees" / sha[:12]
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("mine\n")
    with pytest.raises(SetupError, match="omzoo did not make it"):
        worktree.worktree(sha, "", tmp_path / "log")
    (foreign / MARKER).write_text("a marker someone else wrote\n")
    with pytest.raises(SetupError, match="omzoo did not make it"):
        worktree.worktree(sha, "", tmp_path / "log")
    assert (foreign / "thesis.tex").read_text() == "mine\n"


def test_the_workspace_snapshot_holds_tracked_changes_and_changes_nothing(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    head = commit(repo, {"params.yaml": "models: {}\n", "a.txt": "one\n"})
    assert source_commit("workspace") == head  # nothing changed: HEAD itself
    (repo / "a.txt").write_text("edited\n")
    snap = source_commit("workspace")
    assert snap != head and git(repo, "show", f"{snap}:a.txt") == "edited"
    assert (repo / "a.txt").read_text() == "edited\n" and git(repo, "stash", "list") == ""
    assert git(repo, "rev-parse", "HEAD") == head


def test_overrides_go_into_the_worktrees_params_and_key_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"params.yaml": "onnxruntime: {threads: 0}\n", "pyproject.toml": "", "constraints.txt": ""})
    monkeypatch.setattr(worktree, "_env_key", lambda root: "same")  # the environment is not what this tests
    log = tmp_path / "log"
    plain = prepare("base", "main", (), log)
    one = prepare("head", "main", ("onnxruntime.threads=1",), log)
    again = prepare("head", "workspace", ("onnxruntime.threads=1",), log)
    assert plain.root != one.root == again.root and plain.python == sys.executable
    assert (one.root / "params.yaml").read_text() == "onnxruntime:\n  threads: 1\n"
    assert (plain.root / "params.yaml").read_text() == "onnxruntime: {threads: 0}\n"
    assert (repo / "params.yaml").read_text() == "onnxruntime: {threads: 0}\n"
    with pytest.raises(SetupError, match=r"head \(main\): -S onnxruntime"):
        prepare("head", "main", ("onnxruntime=[",), log)


def test_the_same_pins_use_this_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "constraints.txt").write_text("onnxruntime==1.32.0\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (other / "constraints.txt").write_text("onnxruntime==1.32.0\n")
    assert environment(other, tmp_path / "log") == sys.executable
    (other / "constraints.txt").write_text("onnxruntime==1.31.1\n")
    env = repo / ".omzoo" / "abtest" / "envs" / worktree._env_key(other)
    env.mkdir(parents=True)
    with pytest.raises(SetupError, match="omzoo did not make it"):
        environment(other, tmp_path / "log")


@pytest.mark.slow
def test_a_toolkit_branch_gets_its_own_environment_with_its_pin(tmp_path: Path) -> None:
    """This checkout on main and on a branch that pins onnxruntime 1.31.1: BASE runs in this environment (same
    pins), HEAD in one its own `make setup` built, with 1.31.1 installed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = pipeline_env()
    tiny_checkout(repo, env, "ran92_cifar10")
    sh(repo, env, "git", "checkout", "-qb", "ort-1.31")
    pins = (repo / "constraints.txt").read_text().splitlines()
    (repo / "constraints.txt").write_text("\n".join("onnxruntime==1.31.1" if p.startswith("onnxruntime==") else p
                                                    for p in pins) + "\n")
    sh(repo, env, "git", "commit", "-qam", "onnxruntime 1.31.1")
    sh(repo, env, "git", "checkout", "-q", "main")
    code = ("import sys; from pathlib import Path; from omzoo.results.worktree import prepare; "
            "[print(prepare(s, r, (), Path('setup.log')).python) for s, r in (('base', 'main'), ('head', 'ort-1.31'))]")
    base, head = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True,
                                check=True).stdout.split()
    assert base == sys.executable and head != base
    version = subprocess.run([head, "-c", "import onnxruntime; print(onnxruntime.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "1.31.1"
    assert owned(Path(head).parents[1]) and (Path(head).parents[1] / ".installed").is_file()
