"""omzoo.core.io: atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from omzoo.core.io import (
    MARKER,
    NotOurs,
    NotRegular,
    atomic_dir,
    atomic_files,
    atomic_write,
    claim_folder,
    open_regular,
    read_json,
    remove_stale_temps,
    save_npy_atomic,
    write_bytes_atomic,
    write_files_atomic,
    write_json_atomic,
)


def test_atomic_write_replaces_only_on_success(tmp_path: Path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("one")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("two")
        raise RuntimeError("boom")
    assert target.read_text() == "one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_write_json_atomic_format(tmp_path: Path):
    path = tmp_path / "a" / "m.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        write_json_atomic(path, {"x": math.nan})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}


def test_save_npy_atomic(tmp_path: Path):
    arr = np.arange(12, dtype=np.int64).reshape(3, 4)
    path = tmp_path / "x" / "a.npy"
    save_npy_atomic(path, arr)
    np.testing.assert_array_equal(np.load(path), arr)
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.npy"]


def test_atomic_dir(tmp_path: Path):
    out = tmp_path / "out"
    with atomic_dir(out, "test") as tmp:
        (tmp / "a").write_text("1")
        assert not out.exists()
    assert (out / "a").read_text() == "1"
    with pytest.raises(KeyError), atomic_dir(out, "test") as tmp:
        (tmp / "b").write_text("2")
        raise KeyError
    assert sorted(p.name for p in out.iterdir()) == [".omzoo-output", "a"]
    with atomic_dir(out, "test") as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == [".omzoo-output", "c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temps_are_only_omzoos_own(tmp_path: Path):
    """A killed atomic_dir leaves its temp folder, marked from the start; the next write of that output removes it,
    and never a user's folder that merely looks alike (out.old-2023, out.tmp-99999, one with a marker but a name
    whose check-sum omzoo did not make)."""
    out = tmp_path / "out"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom omzoo.core.io import atomic_dir\n"
         "with atomic_dir(sys.argv[1], 'test') as tmp:\n    print(tmp, flush=True)\n    time.sleep(600)\n", str(out)],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    leftover = Path(writer.stdout.readline().strip())
    writer.kill()
    writer.wait()
    writer.stdout.close()
    assert leftover.is_dir() and (leftover / MARKER).is_file()
    keep = [tmp_path / "out.old-2023", tmp_path / "out.tmp-999999999", tmp_path / f"out.tmp-999999999-1-{'0' * 12}",
            tmp_path / "outer.tmp-999999999"]
    claim_folder(keep[2], "test")  # omzoo's marker, but not a temp name omzoo made
    for d in keep:
        d.mkdir(exist_ok=True)
        (d / "thesis.tex").write_text("mine")
    with atomic_dir(out, "test") as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(out, "test") as tmp:  # replacing an output: its retired copy is removed too
        (tmp / "b").write_text("2")
    assert not leftover.exists() and all((d / "thesis.tex").read_text() == "mine" for d in keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", *(d.name for d in keep)])
    remove_stale_temps(out)
    assert all(d.is_dir() for d in keep)


def test_an_atomic_replace_keeps_the_files_mode(tmp_path: Path):
    """A params.yaml of mode 640 stays 640 when `omzoo sweep` rewrites it; a new file gets the umask's mode."""
    target = tmp_path / "params.yaml"
    target.write_text("a: 1\n")
    target.chmod(0o640)
    write_bytes_atomic(target, b"a: 2\n")
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_bytes() == b"a: 2\n"
    umask = os.umask(0)
    os.umask(umask)
    write_bytes_atomic(tmp_path / "new", b"x")
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_with_suffix_appending_writer(tmp_path: Path):
    """np.save(path) appends .npy unless the name ends with it: the temp name keeps the suffix."""
    target = tmp_path / "a.npy"
    with atomic_write(target) as tmp:
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_write(tmp_path / "b.txt"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


def test_atomic_write_removes_the_temp_of_a_killed_writer(tmp_path: Path):
    """A writer killed mid-write leaves its temp file; the next write of that target removes it, and nothing else."""
    target = tmp_path / "model.onnx"
    writer = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom omzoo.core.io import atomic_write\n"
         "with atomic_write(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'x' * 4096)\n    print(tmp, flush=True)\n"
         "    time.sleep(600)\n", str(target)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    leftover = Path(writer.stdout.readline().strip())
    writer.kill()
    writer.wait()
    writer.stdout.close()
    assert leftover.is_file() and leftover.name.startswith(f".model.onnx.tmp-{writer.pid}-")
    keep = [tmp_path / f".model.onnx.tmp-{os.getppid()}-1.onnx",  # a live writer's
            tmp_path / ".model.onnx.tmp-999999999-1.onnx",  # looks alike: no check-sum omzoo made
            tmp_path / ".model.onnx.tmp-999999999-1.onnx.bak",  # not a name atomic_write makes
            tmp_path / ".other.onnx.tmp-999999999-1.onnx",  # another target's
            tmp_path / "model.onnx.tmp-999999999"]  # atomic_dir's form, not atomic_write's
    for p in keep:
        p.write_bytes(b"keep")
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and not leftover.exists()
    assert all(p.read_bytes() == b"keep" for p in keep)


@pytest.mark.parametrize("writer", ["atomic_write", "atomic_dir"])
def test_a_full_disk_names_the_output(tmp_path: Path, writer: str):
    """A failed write's OSError names no file; the writers name the output the user asked for."""
    target = tmp_path / "out"
    writing = atomic_write(target) if writer == "atomic_write" else atomic_dir(target, "test")
    with pytest.raises(OSError) as e, writing:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(target)
    assert str(e.value) == f"[Errno {errno.ENOSPC}] cannot write: No space left on device: '{target}'"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["fifo", "folder", "device", "missing", "too big"])
def test_open_regular_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str):
    """A FIFO would block the reader forever and /dev/zero never ends: both are refused before a byte is read."""
    path = tmp_path / "x.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "too big":
        path.write_bytes(b"x" * 11)
    want = {"fifo": "is a FIFO", "folder": "is a folder", "device": "is a character device", "missing": "no such",
            "too big": "is 11 bytes, more than the 10"}[kind]
    with pytest.raises(NotRegular, match=f"{path}: {want}"):
        open_regular(path, 10)


def test_open_regular_reads_a_file_and_a_link_to_one(tmp_path: Path):
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with open_regular(tmp_path / "b", 3) as f:
        assert f.read() == b"abc"


def test_read_json_names_the_file_and_refuses_nan(tmp_path: Path):
    path = tmp_path / "m.json"
    path.write_text('{"x": NaN}')
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        read_json(path)
    path.write_text('{"x": 1}')
    assert read_json(path) == {"x": 1}


def test_atomic_files_replace_all_or_none(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "sub" / "b.json"
    write_files_atomic({a: b"1", b: b"1"})
    with pytest.raises(RuntimeError), atomic_files([a, b]) as (ta, tb):
        ta.write_bytes(b"2")
        raise RuntimeError("the second file fails")
    assert a.read_bytes() == b.read_bytes() == b"1"
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(NotOurs, match="dir.json: exists and is a folder"):
        write_files_atomic({a: b"3", tmp_path / "dir.json": b"3"})
    assert a.read_bytes() == b"1" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "dir.json", "sub"]


def test_a_write_error_naming_the_temp_file_names_the_output(tmp_path: Path):
    target = tmp_path / "m.onnx"
    with pytest.raises(OSError) as e, atomic_write(target) as tmp:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(tmp))
    assert e.value.filename == str(target) and ".tmp-" not in str(e.value)
    with pytest.raises(OSError) as e, atomic_write(target) as tmp:
        raise RuntimeError(f"PytorchStreamWriter failed writing file {tmp}")
    assert e.value.filename == str(target) and ".tmp-" not in str(e.value)


@pytest.mark.parametrize("what", ["a manifest.json of its own", "a forged marker", "a symlink", "a file"])
def test_only_a_folder_marked_by_omzoo_is_replaced(tmp_path: Path, what: str):
    out = tmp_path / "out"
    if what == "a symlink":
        (tmp_path / "mine").mkdir()
        out.symlink_to(tmp_path / "mine")
    elif what == "a file":
        out.write_text("notes")
    else:
        out.mkdir()
        (out / "thesis.tex").write_text("x")
        name, text = ("manifest.json", "{}") if what.startswith("a manifest") else (MARKER, '{"written_by": "me"}')
        (out / name).write_text(text)
    with pytest.raises(NotOurs), atomic_dir(out, "test"):
        pass
    with pytest.raises(NotOurs):
        claim_folder(out, "test")


def test_claim_folder_marks_a_new_or_empty_folder(tmp_path: Path):
    folder = claim_folder(tmp_path / "reports", "reports")
    assert json.loads((folder / MARKER).read_text()) == {"written_by": "omzoo", "output": "reports"}
    (folder / "summary.md").write_text("ours")
    assert claim_folder(folder, "reports") == folder  # omzoo's own: written again
