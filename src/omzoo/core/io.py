"""Safe file input and atomic, owned file output: a reader (or DVC) never sees a half-written file, and omzoo
replaces or deletes only what it wrote itself.

Every writer goes to a temporary name in the *same directory* (so the final ``os.replace`` is a
rename on one file system, which POSIX makes atomic) and only replaces the target when the write
finished without an exception. A killed process leaves at most a ``.tmp-`` file behind, never a
truncated target, and the next write of the same target removes it (only names of our own form, only
those of dead processes). A write that fails for lack of space names the target it could not write.

The rules every verb follows (README "Security"):
- Several files of one result are committed together (``atomic_files``: every file written to its temporary name
  first, then all renamed), so a failure part-way leaves the previous result whole.
- Ownership: a folder omzoo writes is new, empty, or carries ``MARKER`` with the content only omzoo writes
  (``owned``); anything else, a symlink or a file where a folder is wanted included, is refused with one line.
- Input: ``open_regular`` opens regular files only (a FIFO would block forever, a device never ends) and refuses
  a file above the reader's size limit before reading a byte.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "MARKER",
    "NotOurs",
    "NotRegular",
    "atomic_dir",
    "atomic_files",
    "check_replaceable",
    "check_file_output",
    "claim_folder",
    "atomic_write",
    "json_bytes",
    "open_regular",
    "owned",
    "read_json",
    "remove_stale_temps",
    "save_npy_atomic",
    "sha256_file",
    "write_bytes_atomic",
    "write_files_atomic",
    "write_json_atomic",
]

#: the file omzoo writes into every folder it owns; its content (JSON, written_by: omzoo) says so, not its name
MARKER = ".omzoo-output"
_MARKER_WRITER = "omzoo"


class NotRegular(ValueError):
    """An input path that is not a regular file (a FIFO, a device, a folder) or is larger than its reader allows."""


def _kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str], max_bytes: int | None = None, what: str = "file") -> BinaryIO:
    """Open ``path`` for reading only when it is a regular file (a link to one is followed) of at most ``max_bytes``.

    Opened without blocking (a FIFO's open would wait for a writer forever) and checked on the open descriptor, so
    a file swapped after a check cannot slip through. The message names the path and what it is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise NotRegular(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise NotRegular(f"{path}: is a folder, not a {what}") from None
    info = os.fstat(fd)
    problem = ""
    if not stat.S_ISREG(info.st_mode):
        problem = f"is {_kind(info.st_mode)}, not a regular {what}"
    elif max_bytes is not None and info.st_size > max_bytes:
        problem = f"is {info.st_size} bytes, more than the {max_bytes} a {what} may have"
    if problem:
        os.close(fd)
        raise NotRegular(f"{path}: {problem}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_json(path: str | os.PathLike[str], max_bytes: int = 1 << 28) -> Any:
    """A JSON file omzoo wrote (metrics, info, manifest): a regular file holding strict JSON (no NaN or Infinity,
    which the writers refuse too); anything else is a ValueError naming the file."""
    with open_regular(path, max_bytes, "JSON file") as f:
        data = f.read()
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON ({' '.join(str(e).split())})") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks (checkpoints and shards are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; ``os.replace`` it onto ``path`` on success (``atomic_files``)."""
    with atomic_files([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield one temporary path next to each of ``paths``; rename them all onto ``paths`` once the body finished.

    The caller writes each yielded path however it likes (open, np.save, a library writer). On an exception every
    temporary file is removed and the exception propagates: no target changes, so the previous result stays whole
    (a failure can never leave new rounds beside old metrics). Parent directories are created; an existing target
    must be a regular file (a folder, FIFO or symlink there is refused). Temporary files that killed writers of a
    target left are removed first. An error that names a temporary file is re-raised naming its target.
    """
    targets = [Path(p) for p in paths]
    for target in targets:
        check_file_output(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_write_temps(target)
    # pid + thread id: concurrent writers of one path never share a temp file. The target's suffix is kept
    # at the end so suffix-appending writers (np.save adds ".npy") write exactly the yielded path.
    temps = [t.with_name(f".{t.name}.tmp-{os.getpid()}-{threading.get_ident()}{t.suffix}") for t in targets]
    try:
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written to the temporary file for {target}")
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    except BaseException as e:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        renamed = _naming_target(e, dict(zip(temps, targets, strict=True)))
        if renamed is not None:
            raise renamed from e
        raise


def check_file_output(target: Path) -> None:
    """A file output may replace a regular file only: never a folder, a FIFO, a device or a symlink (which would be
    replaced by a file, leaving what it pointed to stale)."""
    if target.is_symlink():
        raise NotOurs(f"{target}: is a symlink; refusing to replace it (choose another output)")
    if target.exists() and not target.is_file():
        raise NotOurs(f"{target}: exists and is {_kind(target.stat().st_mode)}; refusing to replace it")


def _naming_target(e: BaseException, temps: Mapping[Path, Path]) -> OSError | None:
    """A failed write (disk full, file size limit) raises an error that names no file or the temporary one: the
    atomic writers re-raise it naming their target, the output the user asked for."""
    text = str(e)
    for tmp, target in temps.items():
        named = isinstance(e, OSError) and e.filename is not None and Path(e.filename) == tmp
        if named or str(tmp) in text:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else text.replace(str(tmp), str(target))
            reason = reason.removeprefix("cannot write: ")  # already re-raised by an inner writer
            return OSError(getattr(e, "errno", None) or errno.EIO, f"cannot write: {' '.join(reason.split())}",
                           str(target))
    if isinstance(e, OSError) and e.filename is None and e.errno is not None:
        target = next(iter(temps.values()))
        return OSError(e.errno, f"cannot write: {e.strerror or e}", str(target))
    return None


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
    write_files_atomic({Path(path): data})


def write_files_atomic(files: Mapping[Path, bytes]) -> None:
    """Write every file of one result, then rename them all (``atomic_files``); each fsync'd, and read back, before
    any rename: a write cut short (a full disk) fails here and replaces nothing."""
    with atomic_files(list(files)) as temps:
        for tmp, data in zip(temps, files.values(), strict=True):
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if tmp.stat().st_size != len(data):
                raise OSError(errno.EIO, f"wrote {tmp.stat().st_size} of {len(data)} bytes", str(tmp))


def json_bytes(obj: Any) -> bytes:
    """``obj`` as stable JSON (indent 2, sorted keys, trailing newline). ``allow_nan=False``: NaN/Infinity are not
    JSON and would break ``dvc metrics`` and other readers, so they fail here, at the writer, instead."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as ``json_bytes`` atomically."""
    write_bytes_atomic(path, json_bytes(obj))


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


def owned(folder: Path) -> bool:
    """Whether ``folder`` carries omzoo's marker: a regular file (not a link) whose JSON says omzoo wrote it."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        with open_regular(marker, 1 << 12) as f:
            return json.loads(f.read()).get("written_by") == _MARKER_WRITER
    except (ValueError, OSError, AttributeError):
        return False


def mark(folder: Path, kind: str) -> None:
    """Put omzoo's marker into a folder omzoo made (an output, an abtest worktree or environment)."""
    (folder / MARKER).write_text(json.dumps({"written_by": _MARKER_WRITER, "output": kind}) + "\n")


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Refuse to replace or write into anything but a new or empty folder or one that carries omzoo's marker: a
    symlink, a file, or a folder of the user's (a manifest.json or meta.json of its own proves nothing)."""
    target = Path(path)
    if target.is_symlink():
        raise NotOurs(f"{target}: is a symlink; refusing to replace it or write through it (choose another output)")
    if not target.exists():
        return
    if not target.is_dir():
        raise NotOurs(f"{target}: exists and is not a folder; refusing to replace it (choose another output)")
    if any(target.iterdir()) and not owned(target):
        raise NotOurs(f"{target}: not empty and not written by omzoo (no {MARKER} of omzoo's); refusing to replace "
                      "it or write into it. Choose an output folder that is new, empty or an earlier omzoo output")


def claim_folder(path: str | os.PathLike[str], kind: str) -> Path:
    """The folder a verb writes its files into (report, compare, plots): checked as ``check_replaceable`` says,
    created when new, and marked as omzoo's so a later run may replace the files it wrote there."""
    folder = Path(path)
    check_replaceable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not owned(folder):
        mark(folder, kind)
    return folder


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], kind: str) -> Iterator[Path]:
    """Yield an empty temporary directory ``<path>.tmp-<pid>``; swap it in for ``path`` on success.

    An existing ``path`` is replaced only when ``check_replaceable`` allows it, so an output pointed at the user's
    own folder fails before anything is written; the new folder is marked as omzoo's output of ``kind``.

    A pre-existing ``path`` is replaced only after the body finished without an exception: it is renamed
    to ``<path>.old-<pid>``, the new directory renamed onto ``path``, then the old one deleted. A process
    killed inside the body leaves ``path`` exactly as it was (plus a ``.tmp-`` directory that the next run
    removes). Killed between the two renames -- a window of two syscalls -- ``path`` is briefly absent but
    never half-written; the previous output survives as ``.old-<pid>``.
    """
    target = Path(path)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        mark(tmp, kind)
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        renamed = _naming_target(e, {tmp: target})
        if renamed is None and isinstance(e, OSError) and e.filename and str(e.filename).startswith(f"{tmp}/"):
            renamed = OSError(e.errno or errno.EIO, f"cannot write: {e.strerror or e}", str(target))
        if renamed is not None:
            raise renamed from e
        raise
