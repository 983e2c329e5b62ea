"""omzoo.io: atomic writes leave either the old file or the complete new one, never a partial one."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from omzoo.io import atomic_dir, atomic_write, remove_stale_temps, save_npy_atomic, write_json_atomic


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
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
        assert not out.exists()
    assert (out / "a").read_text() == "1"
    with pytest.raises(KeyError), atomic_dir(out) as tmp:
        (tmp / "b").write_text("2")
        raise KeyError
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    with atomic_dir(out) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_remove_stale_temps_only_dead_pids(tmp_path: Path):
    out = tmp_path / "out"
    dead = tmp_path / "out.tmp-999999999"  # beyond pid_max: never alive
    alive = tmp_path / f"out.tmp-{os.getppid()}"
    other = tmp_path / "outer.tmp-999999999"
    for d in (dead, alive, other):
        d.mkdir()
    remove_stale_temps(out)
    assert not dead.exists() and alive.exists() and other.exists()


def test_atomic_write_with_suffix_appending_writer(tmp_path: Path):
    """np.save(path) appends .npy unless the name ends with it: the temp name keeps the suffix."""
    target = tmp_path / "a.npy"
    with atomic_write(target) as tmp:
        np.save(tmp, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_write(tmp_path / "b.txt"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
