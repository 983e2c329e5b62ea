"""A tiny git repository in a test's tmp_path, for the code that reads files at a revision (omzoo.results):
commit files on a branch, then chdir into it (revisions runs git in the working directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dvc_helpers import pipeline_env, sh


def write(repo: Path, files: dict[str, Any]) -> None:
    """Write each file (a str as text, anything else as JSON); None deletes it."""
    for name, body in files.items():
        path = repo / name
        if body is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body if isinstance(body, str) else json.dumps(body))


def commit(repo: Path, files: dict[str, Any], message: str = "files") -> str:
    """Write `files`, commit everything (nothing changed: an empty commit), and return the commit id."""
    write(repo, files)
    env = pipeline_env()
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-q", "--allow-empty", "-m", message)
    return sh(repo, env, "git", "rev-parse", "HEAD").stdout.strip()


def git(repo: Path, *args: str) -> str:
    return sh(repo, pipeline_env(), "git", *args).stdout.strip()


def new_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository on branch `main` under tmp_path, made the working directory for the test."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    monkeypatch.chdir(path)
    return path
