"""Reading another revision: `dvc ... --json` and git, with their failures turned into one clear message.

Metrics, info files, per-round samples and the plot's CSV are committed with `cache: false`, so any revision can
be read from git without `dvc pull`; DVC-tracked outputs (infer logits) go through the DVC cache or remote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


class DvcError(ValueError):
    """A dvc command failed; the message carries its own error line (a ValueError, so the CLI prints it)."""



def _dvc_env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}


def dvc_json(args: list[str]) -> tuple[Any, str]:
    """Run `dvc ARGS` (the dvc of this interpreter, whatever PATH says) and return (parsed stdout, stderr).

    Python's json accepts the bare NaN token DVC writes for NaN metrics (DVC.md §5).
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True, env=_dvc_env())
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise DvcError(f"`dvc {' '.join(args)}` failed: {errors[-1] if errors else f'exit {proc.returncode}'}")
    text = proc.stdout.strip()
    return (json.loads(text) if text else {}), proc.stderr


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def check_revision(rev: str) -> None:
    """Fail early, by name, on a revision git cannot resolve (DVC's own message is a bare traceback-ish line).

    Like DVC, a branch that exists only on a remote (`origin/<rev>` after `git fetch`) is accepted.
    """
    if rev == "workspace" or _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0:
        return
    if _git("for-each-ref", "--format=%(refname)", f"refs/remotes/*/{rev}").stdout.strip():
        return
    known = _git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags").stdout.split()
    raise ValueError(f"unknown revision {rev!r}: no branch, tag or commit of that name here "
                     f"(local branches and tags: {', '.join(known) or 'none'}; `git fetch --all` for remote ones)")


def read_text(rev: str, path: str) -> str | None:
    """A file committed at `rev` (the working tree for "workspace"), or None where it does not exist there."""
    if rev == "workspace":
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None
    proc = _git("show", f"{rev}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def read_json(rev: str, path: str) -> Any:
    """A committed JSON file at `rev`, or None where it is missing or not JSON."""
    text = read_text(rev, path)
    try:
        return None if text is None else json.loads(text)
    except json.JSONDecodeError:
        return None
