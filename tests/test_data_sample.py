"""data/sample.py: deterministic bytes, the sizes and modes docs/models.md §0.3 needs, real-format labels and CIFAR
pickles, and a marker that makes the folder omzoo's (the `sample-data` verb: test_sample_data.py)."""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
from cli_helpers import tree
from PIL import Image

from omzoo.data.sample import SEED_FILE as MARKER
from omzoo.data.sample import write_sample


def test_sample_is_deterministic(tmp_path: Path):
    write_sample(tmp_path / "a")
    write_sample(tmp_path / "b")
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert a == b and len(a) == 32 + 1 + 2 + 1 + 1 and MARKER in a
    write_sample(tmp_path / "c", seed=1)
    assert tree(tmp_path / "c") != a
    write_sample(tmp_path / "c", seed=0)  # an existing output is replaced
    assert tree(tmp_path / "c") == a
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_sample_contents(tmp_path: Path):
    write_sample(tmp_path)
    val = tmp_path / "imagenet/val"
    names = sorted(p.name for p in val.iterdir())
    assert names == [f"ILSVRC2012_val_{k:08d}.JPEG" for k in range(1, 33)]
    sizes, modes = set(), []
    for name in names:
        with Image.open(val / name) as im:
            assert im.format == "JPEG"
            sizes.add(im.size)
            modes.append(im.mode)
    assert {(500, 375), (375, 500), (640, 480), (224, 300), (256, 256), (600, 400), (343, 256)} <= sizes
    assert any(min(s) < 224 for s in sizes) and len(sizes) >= 20
    assert modes.count("L") == 1 and modes.count("CMYK") == 1
    lines = (tmp_path / "imagenet/val_label.txt").read_text().splitlines()
    assert len(lines) == 32 and lines[0].startswith("ILSVRC2012_val_00000001.JPEG ")
    assert all(len(ln.split(" ")) == 2 and 0 <= int(ln.split(" ")[1]) < 1000 for ln in lines)
    # smooth content: neighbouring pixels are close most of the time (not noise)
    arr = np.asarray(Image.open(val / names[0]).convert("RGB"), dtype=np.int16)
    assert np.median(np.abs(np.diff(arr, axis=1))) <= 4


def test_sample_cifar_is_python2_format(tmp_path: Path):
    write_sample(tmp_path)
    raw = (tmp_path / "cifar-10-batches-py/test_batch").read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    assert raw[:2] == b"\x80\x02" and "SHORT_BINSTRING" in ops
    assert not ops & {"SHORT_BINUNICODE", "BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
    d = pickle.loads(raw, encoding="bytes")
    assert set(d) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (64, 3072)
    assert sorted(set(d[b"labels"])) == list(range(10))
    s = pickle.loads(raw, encoding="latin1")
    np.testing.assert_array_equal(s["data"], d[b"data"])
    assert s["batch_label"] == "testing batch 1 of 1" and isinstance(s["filenames"][0], str)
    meta = pickle.loads((tmp_path / "cifar-10-batches-py/batches.meta").read_bytes(), encoding="latin1")
    assert meta["label_names"][9] == "truck" and meta["num_vis"] == 3072 and meta["num_cases_per_batch"] == 64
