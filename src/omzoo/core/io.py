"""Atomic file output: a reader (or DVC) never sees a half-written file.

Every writer goes to a temporary name in the *same directory* (so the final ``os.replace`` is a
rename on one file system, which POSIX makes atomic) and only replaces the target when the write
finished without an exception. A killed process leaves at most a ``.tmp-`` file behind, never a
truncated target, and the next write of the same target removes it (only names of our own form, only
those of dead processes). A write that fails for lack of space names the target it could not write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

__all__ = [
    "NotOurs",
    "atomic_dir",
    "check_replaceable",
    "atomic_write",
    "remove_stale_temps",
    "save_npy_atomic",
    "sha256_file",
    "write_bytes_atomic",
    "write_json_atomic",
]


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks (checkpoints and shards are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; ``os.replace`` it onto ``path`` on success.

    The caller writes to the yielded path however it likes (open, np.save, a library writer). On an
    exception the temporary file is removed and the exception propagates; ``path`` is untouched.
    Parent directories are created. Temporary files that killed writers of ``path`` left are removed first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_write_temps(target)
    # pid + thread id: concurrent writers of one path never share a temp file. The target's suffix is kept
    # at the end so suffix-appending writers (np.save adds ".npy") write exactly the yielded path.
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}{target.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_write: nothing was written to the temporary file for {target}")
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if _unnamed_os_error(e):  # a write that hit a full disk: say which output
            raise OSError(e.errno, f"cannot write: {e.strerror or e}", str(target)) from e
        raise


def _unnamed_os_error(e: BaseException) -> TypeGuard[OSError]:
    """A failed write (disk full, file size limit) raises an OSError that names no file: the atomic writers
    re-raise it naming their target, the output the user asked for."""
    return isinstance(e, OSError) and e.filename is None and e.errno is not None


def _remove_stale_write_temps(target: Path) -> None:
    """Remove the temporary files of earlier writers of ``target`` that were killed (dead pids only): only names of
    atomic_write's own form, ``.<name>.tmp-<pid>-<thread><suffix>``, and only regular files."""
    own = re.compile(rf"\.{re.escape(target.name)}\.tmp-(\d+)-\d+{re.escape(target.suffix)}")
    for sibling in target.parent.glob(f".{glob_escape(target.name)}.tmp-*"):
        m = own.fullmatch(sibling.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        if sibling.is_file() and not sibling.is_symlink():
            sibling.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, fsync'd before the rename."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as stable JSON (indent 2, sorted keys, trailing newline) atomically.

    ``allow_nan=False``: NaN/Infinity are not JSON and would break ``dvc metrics`` and other readers,
    so they fail here, at the writer, instead.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically (no pickled objects; the ``.npy`` name is kept as given)."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        # Writing through a file object stops np.save from appending ".npy" to the temp name.
        np.save(f, np.asarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only, nothing is delivered
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: str | os.PathLike[str]) -> None:
    """Remove ``<path>.tmp-<pid>`` / ``<path>.old-<pid>`` siblings left by killed runs (dead pids only)."""
    target = Path(path)
    if not target.parent.is_dir():
        return
    for sibling in target.parent.glob(f"{glob_escape(target.name)}.*-*"):
        kind, _, pid = sibling.name[len(target.name) + 1 :].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)


def glob_escape(name: str) -> str:
    """Escape glob metacharacters in a literal file name."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class NotOurs(ValueError):
    """An output path holds something omzoo did not write; replacing it could destroy the user's files."""


def check_replaceable(path: str | os.PathLike[str], marker: str) -> None:
    """Refuse to replace a non-empty directory (or a file) that lacks ``marker``, the file omzoo writes last
    into every output directory of that kind (a shard set's manifest, an artefact's meta.json)."""
    target = Path(path)
    if target.is_symlink() or not target.exists():
        return
    if not target.is_dir():
        raise NotOurs(f"{target}: exists and is not a directory; refusing to replace it (choose another output)")
    if any(target.iterdir()) and not (target / marker).is_file():
        raise NotOurs(f"{target}: not empty and not written by omzoo (no {marker}); refusing to replace it. "
                      "Choose an output folder that is new, empty or an earlier omzoo output")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], marker: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary directory ``<path>.tmp-<pid>``; swap it in for ``path`` on success.

    With ``marker``, an existing ``path`` is replaced only when it is empty or holds that file (see
    ``check_replaceable``), so an output pointed at the user's own folder fails before anything is written.

    A pre-existing ``path`` is replaced only after the body finished without an exception: it is renamed
    to ``<path>.old-<pid>``, the new directory renamed onto ``path``, then the old one deleted. A process
    killed inside the body leaves ``path`` exactly as it was (plus a ``.tmp-`` directory that the next run
    removes). Killed between the two renames -- a window of two syscalls -- ``path`` is briefly absent but
    never half-written; the previous output survives as ``.old-<pid>``.
    """
    target = Path(path)
    if marker is not None:
        check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        if target.exists() or target.is_symlink():
            os.replace(target, old)
            os.replace(tmp, target)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            os.replace(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if _unnamed_os_error(e):  # a write that hit a full disk: say which output
            raise OSError(e.errno, f"cannot write: {e.strerror or e}", str(target)) from e
        raise
