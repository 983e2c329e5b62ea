"""Reading another revision: `dvc ... --json` and git, with their failures turned into one clear message.

Metrics, info files, per-round samples and the plot's CSV are committed with `cache: false`, so any revision can
be read from git without `dvc pull`; DVC-tracked outputs (infer logits) go through the DVC cache or remote.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omzoo.core import paths
from omzoo.core.params import Params, once, revision_params


class DvcError(ValueError):
    """A dvc command failed; the message carries its own error line (a ValueError, so the CLI prints it)."""


class NotAvailable(Exception):
    """A DVC-tracked file that cannot be read at a revision here; the message says why and how to fetch it.
    `fetch` is the DVC target whose fetch would make it readable ("" when fetching cannot help)."""

    def __init__(self, message: str, fetch: str = "") -> None:
        super().__init__(message)
        self.fetch = fetch


def _dvc_env() -> dict[str, str]:
    return {**os.environ, "DVC_NO_ANALYTICS": "1"}


def dvc_json(args: list[str]) -> tuple[Any, str]:
    """Run `dvc ARGS` (the dvc of this interpreter, whatever PATH says) and return (parsed stdout, stderr).

    Python's json accepts the bare NaN token DVC writes for NaN metrics (docs/dvc.md §5).
    """
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True, env=_dvc_env())
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise DvcError(f"`dvc {' '.join(args)}` failed: {errors[-1] if errors else f'exit {proc.returncode}'}")
    text = proc.stdout.strip()
    return (json.loads(text) if text else {}), proc.stderr


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True)


def commit_of(rev: str) -> str | None:
    """`rev` as git resolves it, or, like DVC, the remote-tracking branch of that name (`origin/<rev>` after
    `git fetch`); None for neither."""
    if _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode == 0:
        return rev
    refs = _git("for-each-ref", "--format=%(refname)", f"refs/remotes/*/{rev}").stdout.split()
    return refs[0] if refs else None


def check_revision(rev: str) -> None:
    """Fail early, by name, on a revision git cannot resolve (DVC's own message is a bare traceback-ish line).

    Like DVC, a branch that exists only on a remote (`origin/<rev>` after `git fetch`) is accepted.
    """
    if rev == "workspace" or commit_of(rev):
        return
    known = _git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags").stdout.split()
    raise ValueError(f"unknown revision {rev!r}: no branch, tag or commit of that name here "
                     f"(local branches and tags: {', '.join(known) or 'none'}; `git fetch --all` for remote ones)")


def read_text(rev: str, path: str) -> str | None:
    """A file committed at `rev` (the working tree for "workspace"; a remote-only branch as `check_revision`
    accepts it), or None where it does not exist there."""
    if rev == "workspace":
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return None
    commit = commit_of(rev)
    proc = _git("show", f"{commit}:{path}") if commit else None
    return proc.stdout if proc is not None and proc.returncode == 0 else None


def read_json(rev: str, path: str) -> Any:
    """A committed JSON file at `rev`, or None where it is missing or not JSON."""
    return read_evidence(rev, path)[0]


def read_evidence(rev: str, path: str) -> tuple[Any, str]:
    """A committed JSON file at `rev` and "", or None and why it cannot serve as evidence ("missing", or "not
    valid JSON" with the parser's reason): a gate tells an absent file from a broken one. A revision from before
    precisions kept its fp32 files elsewhere (paths.legacy): read there when the path is absent."""
    text = read_text(rev, path)
    if text is None and (older := paths.legacy(path)):
        text = read_text(rev, older)
    if text is None:
        return None, "missing"
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e})"


def read_params(rev: str) -> Params:
    """params.yaml as committed at `rev`, empty where there is none, with the command's -S applied. Not validated
    as a whole: another revision may name models this checkout's registry does not know, and a comparison only
    reads sections of it. Read once per command (rules, points and the diff all ask for HEAD's)."""
    where = Path(f"{rev}:{paths.PARAMS}")
    return once(where, lambda: revision_params(read_text(rev, str(paths.PARAMS)) or "", where))


def fetch_command(rev: str, target: str) -> str:
    """The command that brings `target`'s data at `rev` into this DVC cache, where dvc.api then reads it.

    `dvc fetch` fills the cache for the revision checked out and has no revision option, so another revision is
    checked out just for it; fetch leaves the workspace's files alone, and `git checkout -` returns."""
    if rev == "workspace":
        return f"dvc pull {target}"
    return f"git checkout {rev} && dvc fetch {target} && git checkout -"


def read_tracked(rev: str, path: str) -> bytes:
    """A DVC-tracked file as it was at `rev` (the working tree, then the cache, for "workspace"), through
    `dvc.api`: from this DVC cache, else streamed from the revision's default remote, never checked out.

    Raises NotAvailable, naming the fetch command, when neither holds it or `rev` never wrote it.
    """
    from dvc.api import DVCFileSystem

    target = paths.holder(path)
    try:
        fs = DVCFileSystem(".", rev=None if rev == "workspace" else rev)
        older = paths.legacy(path)
        if older and not fs.exists(path) and fs.exists(older):  # a revision from before precisions
            path, target = older, paths.holder(older)
        return fs.read_bytes(path)
    except Exception as e:  # noqa: BLE001 - DVC raises many kinds here (missing cache, remote, listing, network)
        if isinstance(e, FileNotFoundError) and e.strerror == os.strerror(errno.ENOENT):
            raise NotAvailable(f"{path} is not among {rev}'s DVC outputs (that revision has not run the stage "
                               f"that writes it, or ran an older version of it)") from None
        otherwise = "or run its stage here" if rev == "workspace" else \
            f"after `dvc push {target}` on the machine that ran {rev} if no remote holds it"
        raise NotAvailable(f"{path} at {rev} is neither in this DVC cache nor on a remote reachable here ({e}); "
                           f"fetch it with `{fetch_command(rev, target)}`, {otherwise}", fetch=target) from None
