"""data/preprocess.py: shards + manifest, bad-input handling, atomicity under SIGKILL, ShardSet reading (the
`preprocess` verb, and what its --out may replace: test_preprocess.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omzoo.core import zoo
from omzoo.core.recipe import normalize
from omzoo.data import DataError
from omzoo.data.decode import load_rgb, resize_crop
from omzoo.data.preprocess import preprocess
from omzoo.data.readers import read_dataset
from omzoo.data.shards import ShardSet

IMAGENET = zoo.get("scnet50_v1d").recipe  # bilinear224 pixels, ImageNet mean/std
CIFAR = zoo.get("ran92_cifar10").recipe  # cifar32 pixels, x/255 only
SMLP = zoo.get("smlpnet_tiny").recipe  # bicubic224 pixels


def _image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)


def test_preprocess_sample_imagenet(sample: Path, tmp_path: Path):
    data, labels = sample / "imagenet/val", sample / "imagenet/val_label.txt"
    m = preprocess(IMAGENET, data, labels, tmp_path / "out", workers=2, shard_size=10, progress=False)
    assert m["count"] == m["dataset_size"] == 32 and m["n_skipped"] == 0 and m["skipped"] == []
    assert [s["count"] for s in m["shards"]] == [10, 10, 10, 2]
    assert m["pixels"] == "bilinear224" and m["shape"] == [3, 224, 224]
    text = (tmp_path / "out/manifest.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp dirs left behind

    shards = ShardSet(tmp_path / "out")
    shards.verify()
    ds = read_dataset(data, labels)
    assert len(shards) == 32 and shards.names == [it.name for it in ds.items]
    np.testing.assert_array_equal(shards.labels, [it.label for it in ds.items])
    assert shards.labels.dtype == np.int64
    batches = list(shards.iter_batches(7))  # crosses shard boundaries; last batch short
    assert [len(b) for b in batches] == [7, 7, 7, 7, 4]
    allpix = np.concatenate(batches)
    for k in (0, 3, 8, 9, 10, 31):  # includes the grayscale (9th) and CMYK (10th) JPEGs
        np.testing.assert_array_equal(allpix[k], resize_crop(load_rgb(ds.items[k].path), IMAGENET))
    np.testing.assert_array_equal(shards.read(9, 12), allpix[9:12])

    # same pixels with one worker in-process, and the same manifest except nothing
    m1 = preprocess(IMAGENET, data, labels, tmp_path / "one", workers=1, shard_size=10, progress=False)
    assert m1["shards"] == m["shards"] and m1["source_hash"] == m["source_hash"]
    assert m1["pixels"] == "bilinear224"


def test_preprocess_cifar(sample: Path, tmp_path: Path):
    m = preprocess(CIFAR, sample / "cifar-10-batches-py", None, tmp_path / "c", progress=False)
    assert m["count"] == 64 and m["shape"] == [3, 32, 32] and m["num_classes"] == 10
    shards = ShardSet(tmp_path / "c")
    ds = read_dataset(sample / "cifar-10-batches-py", None)
    pix = next(shards.iter_batches(100))
    np.testing.assert_array_equal(pix, ds.pixels(np.arange(64)))
    np.testing.assert_array_equal(normalize(pix, CIFAR), pix.astype(np.float32) / np.float32(255))
    with pytest.raises(DataError, match="use the cifar32 pixels"):
        preprocess(IMAGENET, sample / "cifar-10-batches-py", None, tmp_path / "x", progress=False)


def test_preprocess_model_id_and_unlabelled(tmp_path: Path):
    for k, (w, h) in enumerate([(300, 200), (200, 300)]):
        _image(w, h, k).save(tmp_path / f"im{k}.png")
    m = preprocess(SMLP, tmp_path, None, tmp_path.parent / f"{tmp_path.name}-out", progress=False)
    assert m["pixels"] == "bicubic224" and m["labels"] is None
    assert ShardSet(tmp_path.parent / f"{tmp_path.name}-out").labels is None


@pytest.fixture()
def bad_set(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Good files in every colour mode, plus one of each bad case; returns (data, labels, bad name → keyword)."""
    val = tmp_path / "val"
    val.mkdir()
    lines = []

    def add(k: int, label: int | None = None) -> str:
        name = f"ILSVRC2012_val_{k:08d}.JPEG"
        if label is not None:
            lines.append(f"{name} {label}")
        return name

    _image(300, 280, 1).save(val / add(1, 1), format="JPEG")
    _image(300, 280, 2).convert("L").save(val / add(2, 2), format="JPEG")  # grayscale JPEG
    _image(300, 280, 3).convert("CMYK").save(val / add(3, 3), format="JPEG")  # CMYK JPEG
    _image(300, 280, 4).save(val / add(4, 4), format="PNG")  # a PNG named .JPEG: decoded by content
    rgba = _image(260, 300, 5).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(val / add(5, 5), format="PNG")
    _image(260, 300, 6).quantize(32).save(val / add(6, 6), format="PNG")  # palette
    cut = val / add(7, 7)
    _image(640, 480, 7).save(cut, format="JPEG")
    cut.write_bytes(cut.read_bytes()[:3000])  # truncated JPEG
    (val / add(8, 8)).write_bytes(b"")  # zero-byte file
    add(9, 9)  # labelled, image missing
    _image(300, 280, 10).save(val / add(10), format="JPEG")  # image without label
    _image(300, 280, 11).save(val / add(11, 1000), format="JPEG")  # label out of range
    _image(300, 280, 12).save(val / add(12, 12), format="JPEG")
    lines.append(f"{add(12)} 13")  # duplicated entry
    _image(300, 280, 13).save(val / add(13, 13), format="JPEG")
    lines.append(f"{add(14)} 1 2")  # malformed line (no image either)
    labels = tmp_path / "val_label.txt"
    labels.write_text("\n".join(lines) + "\n")
    bad = {add(7): "truncated", add(8): "0 bytes", add(9): "no image", add(10): "no label",
           add(11): "out of range", add(12): "duplicate", add(14): "expected"}  # fmt: skip
    return val, labels, bad


def test_bad_inputs_fail_with_one_message(bad_set, tmp_path: Path):
    val, labels, bad = bad_set
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        preprocess(IMAGENET, val, labels, out, workers=2, progress=False)
    msg = str(info.value)
    assert msg.startswith(f"{len(bad)} bad input(s)")
    for name, keyword in bad.items():
        line = next(ln for ln in msg.splitlines() if ln.strip().startswith(name))
        assert keyword in line, (name, line)
    for k in (1, 2, 3, 4, 5, 6, 13):
        assert f"ILSVRC2012_val_{k:08d}.JPEG" not in msg
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["val", "val_label.txt"]


def test_skip_bad_lists_and_counts(bad_set, tmp_path: Path):
    val, labels, bad = bad_set
    m = preprocess(IMAGENET, val, labels, tmp_path / "out", workers=2, skip_bad=True, shard_size=4, progress=False)
    assert {s["name"] for s in m["skipped"]} == set(bad)
    assert m["n_skipped"] == len(bad) == 7 and m["dataset_size"] == 14
    assert m["count"] == m["dataset_size"] - m["n_skipped"] == 7
    shards = ShardSet(tmp_path / "out")
    shards.verify()  # the last shard's header was rewritten after the skips: its sha256 must still hold
    assert [s["count"] for s in m["shards"]] == [4, 3]
    assert shards.names == [f"ILSVRC2012_val_{k:08d}.JPEG" for k in (1, 2, 3, 4, 5, 6, 13)]
    assert shards.labels.tolist() == [1, 2, 3, 4, 5, 6, 13]
    pix = np.concatenate(list(shards.iter_batches(3)))
    for k, name in enumerate(shards.names):
        expected = np.asarray(Image.open(val / name).convert("RGB"))  # what every original pipeline decodes
        np.testing.assert_array_equal(pix[k], resize_crop(Image.fromarray(expected), IMAGENET))


def test_empty_or_all_bad_input_fails(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        preprocess(IMAGENET, tmp_path / "empty", None, tmp_path / "o1", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"every input is bad(.|\n)*a\.jpg"):
        preprocess(IMAGENET, tmp_path / "bad", None, tmp_path / "o2", skip_bad=True, progress=False)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


# --- atomicity -------------------------------------------------------------------------------------------


def _slow_set(root: Path, n: int = 30) -> Path:
    """Large JPEGs: ~20-40 ms each to decode and resize, so a run lasts about a second."""
    root.mkdir()
    for k in range(n):
        _image(1400, 1000, k).save(root / f"img_{k:03d}.jpg", quality=95)
    return root


def test_killed_run_leaves_previous_output_untouched(sample: Path, tmp_path: Path):
    out = tmp_path / "out"
    preprocess(IMAGENET, sample / "imagenet/val", sample / "imagenet/val_label.txt", out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    slow = _slow_set(tmp_path / "slow")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def cmd(dst: Path) -> list[str]:
        """preprocess() in a process of its own, to be killed: the slow set into shards of 2 images, one worker."""
        return [sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom omzoo.core import zoo\n"
                "from omzoo.data.preprocess import preprocess\n"
                "preprocess(zoo.pixel_recipe('bilinear224'), Path(sys.argv[1]), None, Path(sys.argv[2]), workers=1, "
                "shard_size=2, progress=False)", str(slow), str(dst)]

    proc = subprocess.Popen(cmd(out), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    first_shard = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("out.tmp-*/shard-00000.npy"))
        if found:
            first_shard = found[0]
            break
        time.sleep(0.005)
    assert first_shard is not None, f"no shard appeared; rc={proc.poll()} {proc.stderr.read() if proc.stderr else ''}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # the previous output is byte-identical; the killed run's temp dir has shards but no manifest
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    tmp_dirs = list(tmp_path.glob("out.tmp-*"))
    assert len(tmp_dirs) == 1 and not (tmp_dirs[0] / "manifest.json").exists()
    # a fresh output killed mid-run has no manifest at all
    fresh = tmp_path / "fresh"
    proc = subprocess.Popen(cmd(fresh), env=env)
    while proc.poll() is None and not list(tmp_path.glob("fresh.tmp-*/shard-00000.npy")):
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert not (fresh / "manifest.json").exists()
    # the next successful run replaces the output and removes the dead run's temp dirs
    m = preprocess(IMAGENET, slow, None, out, workers=2, shard_size=16, progress=False)
    assert m["count"] == 30 and ShardSet(out).names[0] == "img_000.jpg"
    assert not list(tmp_path.glob("out.tmp-*"))


def _sigint_ignored(_: object) -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_workers_ignore_ctrl_c_and_the_parent_keeps_its_handler():
    from omzoo.data.preprocess import _pool

    with _pool(2, IMAGENET) as pool:
        assert pool.map(_sigint_ignored, range(4)) == [True] * 4
        assert signal.getsignal(signal.SIGINT) == signal.default_int_handler


def test_a_ctrl_c_while_the_workers_are_forked_is_raised_in_the_parent_and_stops_the_pool(monkeypatch):
    """The window _pool closes: the signal lands during the forks and is raised once the pool exists."""
    import multiprocessing

    from omzoo.data import preprocess as module

    made, real = [], multiprocessing.get_context()

    class Context:
        def Pool(self, *args, **kwargs):  # noqa: N802 - multiprocessing's name
            os.kill(os.getpid(), signal.SIGINT)  # lands during the forks
            made.append(real.Pool(*args, **kwargs))
            return made[0]

    monkeypatch.setattr(module.multiprocessing, "get_context", Context)
    with pytest.raises(KeyboardInterrupt), module._pool(2, IMAGENET) as pool:
        pool.map(_sigint_ignored, range(2))
        pytest.fail("the Ctrl-C was lost")
    assert made and made[0]._state == "TERMINATE"
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler


def test_started_with_ctrl_c_ignored_the_pool_keeps_it_ignored(monkeypatch):
    from omzoo.data.preprocess import _pool

    monkeypatch.setattr(signal, "getsignal", lambda _: signal.SIG_IGN)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _pool(2, IMAGENET) as pool:
            os.kill(os.getpid(), signal.SIGINT)
            assert pool.map(_sigint_ignored, range(2)) == [True, True]
    finally:
        signal.signal(signal.SIGINT, previous)
