"""core/onnxgraph.py: the graph input a backend is fed, and the seeded input that simplify and bench feed it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from omzoo.core.onnxgraph import input_info, load_onnx, onnx_bytes, op_histogram, ort_logits, random_input


def test_random_input_is_seeded_and_never_zero() -> None:
    a = random_input((2, 3, 4, 4), np.dtype(np.uint8), 0)
    assert a.dtype == np.uint8 and a.any()
    np.testing.assert_array_equal(a, random_input((2, 3, 4, 4), np.dtype(np.uint8), 0))
    assert random_input((2, 3), np.dtype(np.float32), 1).dtype == np.float32


@pytest.mark.parametrize(("kind", "want"), [("fifo", "is a FIFO"), ("device", "is a character device"),
                                            ("folder", "is a folder"), ("missing", "no such ONNX file")])
def test_every_onnx_reader_opens_regular_files_only(tmp_path: Path, kind: str, want: str) -> None:
    """A FIFO would block onnx.load forever and /dev/zero fill the memory: each reader names what the path is."""
    path = tmp_path / "m.onnx"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    for read in (onnx_bytes, load_onnx, input_info, op_histogram):
        with pytest.raises(ValueError, match=f"m.onnx: {want}"):
            read(path)
    with pytest.raises(ValueError, match=f"m.onnx: {want}"):
        ort_logits(path, np.zeros((1, 3), np.float32))


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="m.onnx: not a readable ONNX file"):
        load_onnx(tmp_path / "m.onnx")
