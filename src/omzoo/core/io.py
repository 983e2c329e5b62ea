"""Safe file input and atomic, owned file output: a reader (or DVC) never sees a half-written file, and omzoo
replaces or deletes only what it wrote itself.

Every writer goes to a temporary name in the *same directory* (so the final ``os.replace`` is a
rename on one file system, which POSIX makes atomic) and only replaces the target when the write
finished without an exception. A killed process leaves at most a ``.tmp-`` file behind, never a
truncated target, and the next write of the same target removes it (only names carrying omzoo's check-sum, only
those of dead processes). A replaced file keeps its permission mode. A write that fails for lack of space names
the target it could not write.

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
        remove_stale_temps(target)
    # The target's suffix is kept at the end so suffix-appending writers (np.save adds ".npy") write exactly the
    # yielded path.
    temps = [t.with_name(f".{_temp_name(t.name, 'tmp')}{t.suffix}") for t in targets]
    try:
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written to the temporary file for {target}")
            with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its mode (a params.yaml of 640)
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
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


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, fsync'd before the rename."""
    write_files_atomic({Path(path): data})


def write_if_changed(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write `data` atomically unless `path` already holds it (its mtime and DVC's hash of it then stay); True if
    written."""
    target = Path(path)
    if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
        return False
    write_bytes_atomic(target, data)
    return True


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


def _temp_tag(name: str, kind: str, pid: int, thread: int) -> str:
    """A check-sum of a temporary name's parts: only omzoo's writers make names that carry it, so stale-temp cleanup
    never takes a user's file or folder that merely looks like one (``out.old-2023``, ``out.tmp-99999``)."""
    return hashlib.sha256(f"omzoo temp\0{name}\0{kind}\0{pid}\0{thread}".encode()).hexdigest()[:12]


def _temp_name(name: str, kind: str) -> str:
    """``<name>.<kind>-<pid>-<thread>-<tag>``: this process's and thread's temporary (``tmp``) or retired (``old``)
    name for ``name``; pid and thread keep concurrent writers of one path apart."""
    pid, thread = os.getpid(), threading.get_ident()
    return f"{name}.{kind}-{pid}-{thread}-{_temp_tag(name, kind, pid, thread)}"


def remove_stale_temps(path: str | os.PathLike[str]) -> None:
    """Remove what killed writers of ``path`` left beside it: atomic_files' temporary files
    (``.<name>.tmp-...<suffix>``, regular files) and atomic_dir's folders (``<name>.tmp-...``/``<name>.old-...``,
    carrying omzoo's marker). Only names whose check-sum omzoo made, only of dead processes."""
    target = Path(path)
    if not target.parent.is_dir():
        return
    name = re.escape(target.name)
    own = re.compile(rf"(?P<file>\.)?{name}\.(?P<kind>tmp|old)-(?P<pid>\d+)-(?P<thread>\d+)-(?P<tag>[0-9a-f]{{12}})"
                     rf"(?(file){re.escape(target.suffix)})")
    for sibling in target.parent.glob(f"*{glob_escape(target.name)}.*-*"):
        m = own.fullmatch(sibling.name)
        if (m is None or m["tag"] != _temp_tag(target.name, m["kind"], int(m["pid"]), int(m["thread"]))
                or int(m["pid"]) == os.getpid() or _pid_alive(int(m["pid"])) or sibling.is_symlink()):
            continue
        if m["file"] and m["kind"] == "tmp" and sibling.is_file():
            sibling.unlink(missing_ok=True)
        elif not m["file"] and sibling.is_dir() and owned(sibling):
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
    """Yield a new temporary directory ``<path>.tmp-<pid>-<thread>-<tag>``; swap it in for ``path`` on success.

    An existing ``path`` is replaced only when ``check_replaceable`` allows it, so an output pointed at the user's
    own folder fails before anything is written. The temporary folder carries omzoo's marker (output ``kind``) from
    the moment it is made, so the folder that replaces ``path`` is marked, and a killed run's temp is recognisably
    omzoo's: stale cleanup (``remove_stale_temps``) takes only such folders, never a sibling that merely looks alike.

    A pre-existing ``path`` is replaced only after the body finished without an exception: it is renamed
    to ``<path>.old-...``, the new directory renamed onto ``path``, then the old one deleted. A process
    killed inside the body leaves ``path`` exactly as it was (plus a ``.tmp-`` directory that the next run
    removes). Killed between the two renames -- a window of two syscalls -- ``path`` is briefly absent but
    never half-written; the previous output survives as ``.old-...``.
    """
    target = Path(path)
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = target.with_name(_temp_name(target.name, "tmp"))
    if tmp.is_dir() and not tmp.is_symlink() and owned(tmp):  # this pid's and thread's own, from a killed run
        shutil.rmtree(tmp)
    tmp.mkdir()  # never a folder that is there: that one would not be ours
    mark(tmp, kind)  # marked from the start: a killed run's temp is recognisably omzoo's
    try:
        yield tmp
        if target.is_dir() and not any(target.iterdir()):  # an empty folder holds nothing to keep
            target.rmdir()
        if target.exists():
            old = target.with_name(_temp_name(target.name, "old"))
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
