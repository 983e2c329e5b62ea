"""A revision made runnable on this host, for `omzoo abtest`: its files, its environment and its compiled artefacts,
all kept under .omzoo/abtest/ (git-ignored), the revision's own committed results untouched.

- Files: a git worktree of the revision (the workspace with no -S runs in place; with -S, its tracked changes are
  snapshotted with `git stash create`, which touches nothing, and checked out there). A -S is written into the
  worktree's params.yaml, so its pipeline compiles what the setting asks for.
- Environment: what that revision's `make setup` builds from its pyproject.toml and constraints.txt, in
  .omzoo/abtest/envs/<their hash>; the one this command runs in when they are the same files, so a toolkit branch
  gets its own onnxruntime pin and nothing is installed twice.
- Artefacts: that revision's own pipeline up to compile (and preprocess, for accuracy): checked out from the DVC
  cache, which every worktree shares with this checkout, else pulled from its remote, else `dvc repro` there.

Every worktree and environment omzoo makes carries omzoo's marker (omzoo.core.io); one without it is never reused
or changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from omzoo.core import paths
from omzoo.core.io import MARKER, mark, owned
from omzoo.core.params import Params, ParamsError, command, revision_params
from omzoo.results import revisions

HOME = Path(".omzoo/abtest")


class SetupError(ValueError):
    """A side could not be made runnable; the message names the side, the step and its log."""


@dataclass(frozen=True)
class Prepared:
    """One side, ready: its revision, the commit its files come from, where they are, its Python, its params."""

    side: str
    rev: str
    commit: str
    root: Path
    python: str
    params: Params
    in_place: bool  # the workspace itself (no worktree)

    @property
    def has_precisions(self) -> bool:
        """Whether this revision's pipeline has the precision axis (its artefacts are named per precision)."""
        dvc_yaml = self.root / "dvc.yaml"
        return dvc_yaml.is_file() and "${precisions}" in dvc_yaml.read_text(encoding="utf-8")

    def compile_stage(self, model: str, bs: int, precision: str = paths.REFERENCE) -> str:
        """The DVC stage that compiles (model, bs, precision) in this revision's own pipeline (one from before
        precisions has fp32 only, named without it)."""
        return f"compile@{paths.key(model, bs, precision)}" if self.has_precisions else f"compile@{model}-{bs}"

    def compiled(self, model: str, bs: int, precision: str = paths.REFERENCE) -> Path:
        """That stage's artefact (a revision from before precisions kept it at paths.legacy's name)."""
        path = paths.compiled(model, bs, precision)
        return self.root / (path if self.has_precisions else str(paths.legacy(path)))

    def shards(self, pixels: str) -> Path:
        return self.root / paths.shards(pixels)


def _run(args: list[str], cwd: Path, log: Path, what: str, env: dict[str, str] | None = None,
         check: bool = True) -> int:
    """Run a command (never through a shell), its output appended to `log`; a failure names `what` and the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(args)}  (in {cwd})\n")
        f.flush()
        code = subprocess.run(args, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    if check and code != 0:
        raise SetupError(f"{what} failed (exit {code}); see {log}")
    return code


def _git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(f"git {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc.stdout.strip()


def source_commit(rev: str) -> str:
    """The commit a side's files come from: the revision's, or for the workspace a snapshot of its tracked
    changes (`git stash create` writes a commit object and changes nothing; HEAD when there are none)."""
    if rev == "workspace":
        return _git("stash", "create") or _git("rev-parse", "HEAD")
    revisions.check_revision(rev)
    return _git("rev-parse", f"{revisions.commit_of(rev)}^{{commit}}")


def worktree(commit: str, tag: str, log: Path) -> Path:
    """A worktree of `commit` under .omzoo/abtest/worktrees (made once, reset to the commit when reused)."""
    path = (HOME / "worktrees" / (commit[:12] + (f"-{tag}" if tag else ""))).absolute()
    if path.exists():
        if not owned(path):
            raise SetupError(f"{path} exists but omzoo did not make it (no {MARKER} of omzoo's): remove or move it")
        _run(["git", "checkout", "--quiet", "--force", "--detach", commit], path, log, f"resetting {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(["git", "worktree", "add", "--quiet", "--detach", str(path), commit], Path.cwd(), log,
         f"git worktree add {path}")
    mark(path, f"abtest worktree {commit}")
    return path


def _env_key(root: Path) -> str:
    """What `make setup` builds from: the revision's pyproject.toml and constraints.txt."""
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        f = root / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"") + b"\0")
    return h.hexdigest()[:16]


def environment(root: Path, log: Path) -> str:
    """The Python of the environment the revision at `root` builds with its own `make setup`."""
    key = _env_key(root)
    if key == _env_key(Path.cwd()):
        return sys.executable  # the same pins as this checkout: the environment this command runs in
    env_dir = (HOME / "envs" / key).absolute()
    python = env_dir / "bin" / "python"
    if owned(env_dir) and (env_dir / ".installed").is_file():
        return str(python)
    if env_dir.exists() and not owned(env_dir):
        raise SetupError(f"{env_dir} exists but omzoo did not make it (no {MARKER} of omzoo's): remove it")
    env_dir.mkdir(parents=True, exist_ok=True)
    mark(env_dir, f"abtest environment {key}")
    _run(["make", "-C", str(root), "setup", f"VENV={env_dir}"], root, log,
         f"`make setup` of {root} into {env_dir}")
    return str(python)


def _pipeline_env(root: Path, python: str, in_place: bool) -> dict[str, str]:
    """The side's pipeline runs its own code: its environment first on PATH, its src first on PYTHONPATH."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": os.pathsep.join([str(Path(python).parent),
                                                                           os.environ.get("PATH", "")])}
    if not in_place:
        env["PYTHONPATH"] = str(root / "src")
    return env


def _link_data(root: Path, params: Params) -> None:
    """Dataset paths relative to the checkout that exist here but not in the worktree (links made by
    `make link-data`, which git does not hold) are linked into it, so both sides read the same files."""
    for entry in params.section("datasets").values():
        for value in (entry or {}).values() if isinstance(entry, dict) else ():
            rel = Path(str(value))
            if rel.is_absolute() or rel.parts[:2] == paths.SAMPLE.parts or (root / rel).exists():
                continue
            here = Path.cwd() / rel
            if here.exists():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).symlink_to(here.resolve())


def build(prep: Prepared, targets: list[str], log: Path) -> None:
    """The side's artefacts from its own pipeline: from the shared DVC cache, else its remote, else `dvc repro`
    (without the run-cache: an artefact compiled by another toolkit must never stand in for this one's)."""
    env = _pipeline_env(prep.root, prep.python, prep.in_place)
    dvc = [prep.python, "-m", "dvc"]
    if not prep.in_place:
        cache = subprocess.run([sys.executable, "-m", "dvc", "cache", "dir"], capture_output=True, text=True,
                               env=env).stdout.strip()
        if cache:
            _run([*dvc, "cache", "dir", "--local", cache], prep.root, log, "setting the shared DVC cache", env)
        _run([*dvc, "checkout", "--quiet", *targets], prep.root, log, "dvc checkout", env, check=False)
        _link_data(prep.root, prep.params)
        if _run([*dvc, "status", "--quiet", *targets], prep.root, log, "dvc status", env, check=False):
            _run([*dvc, "pull", "--quiet", *targets], prep.root, log, "dvc pull", env, check=False)
    if _run([*dvc, "status", "--quiet", *targets], prep.root, log, "dvc status", env, check=False):
        _run([*dvc, "repro", "--no-run-cache", *targets], prep.root, log,
             f"{prep.side} ({prep.rev}): dvc repro {' '.join(targets)}", env)


def prepare(side: str, rev: str, overrides: tuple[str, ...], log: Path) -> Prepared:
    """Files, environment and params of one side (build() then brings its artefacts). A worktree is keyed by its
    commit and the params.yaml the -S make of it, so two runs that ask for the same thing share it."""
    in_place = rev == "workspace" and not overrides
    commit = "workspace" if in_place else source_commit(rev)
    where = Path(f"{rev}:{paths.PARAMS}")
    text = revisions.read_text("workspace" if in_place else commit, str(paths.PARAMS)) or ""
    try:
        with command(overrides):
            params = revision_params(text, where)
    except ParamsError as e:
        raise SetupError(f"{side} ({rev}): {e}") from None
    written = yaml.safe_dump(params.raw, sort_keys=False) if overrides else ""
    tag = hashlib.sha256(written.encode()).hexdigest()[:8] if overrides else ""
    root = Path.cwd().absolute() if in_place else worktree(commit, tag, log)
    if overrides:
        (root / paths.PARAMS).write_text(written)
    python = environment(root, log)
    return Prepared(side, rev, commit, root, python, params, in_place)
