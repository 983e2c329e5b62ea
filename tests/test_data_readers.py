"""Dataset layouts (docs/datasets.md): flat + val_label.txt, ImageFolder, CIFAR-10 python, unlabelled folders."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omzoo.data import DataError
from omzoo.data.readers import HIDDEN, load_cifar_batch, read_dataset
from omzoo.data.sample import py2_pickle


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _imagefolder_from_flat(sample: Path, dst: Path) -> None:
    """Flat → ImageFolder: one folder per class index (all 1000, so folder rank == label)."""
    for k in range(1000):
        (dst / f"n{k:08d}").mkdir(parents=True)
    for line in (sample / "imagenet/val_label.txt").read_text().splitlines():
        name, label = line.split()
        shutil.copy(sample / "imagenet/val" / name, dst / f"n{int(label):08d}" / name)


def test_flat_layout(sample: Path):
    ds = read_dataset(sample / "imagenet/val", sample / "imagenet/val_label.txt")
    assert ds.kind == "flat" and ds.num_classes == 1000 and ds.problems == [] and ds.size == 32
    names = [it.name for it in ds.items]
    assert names == sorted(names) and len(names) == 32
    assert all(0 <= it.label < 1000 and it.path.is_file() for it in ds.items)


def test_flat_and_imagefolder_give_same_pairs(sample: Path, tmp_path: Path):
    flat = read_dataset(sample / "imagenet/val", sample / "imagenet/val_label.txt")
    _imagefolder_from_flat(sample, tmp_path / "val")
    tree = read_dataset(tmp_path / "val", None)
    assert tree.kind == "imagefolder" and tree.num_classes == 1000 and tree.problems == []
    assert len(tree.class_names) == 1000
    pairs = {(_md5(it.path), it.label) for it in flat.items}
    assert pairs == {(_md5(it.path), it.label) for it in tree.items}
    assert len(pairs) == 32
    # ImageFolder order: by class, then file name
    assert [(it.label, it.name) for it in tree.items] == sorted((it.label, it.name) for it in tree.items)
    assert all(it.name.startswith(f"n{it.label:08d}/") for it in tree.items)


def test_imagefolder_torchvision_order_and_extensions(tmp_path: Path):
    img = Image.new("RGB", (8, 8))
    for rel in ["b/z.JPG", "b/a.png", "b/sub2/c.jpeg", "b/sub1/d.WEBP", "a/x.bmp", "a/notes.txt", "a/y.gif",
                "c/q.TIFF", ".ipynb_checkpoints/junk.png"]:  # fmt: skip
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith((".txt", ".gif")):
            path.write_bytes(b"x")
        else:
            img.save(path, format="PNG")
    ds = read_dataset(tmp_path, None)
    assert ds.kind == "imagefolder" and ds.class_names == ["a", "b", "c"]  # dot-folder is not a class
    # sorted(os.walk): the class folder itself, then sub1, then sub2; files sorted within each
    assert [(it.name, it.label) for it in ds.items] == [
        ("a/x.bmp", 0), ("b/a.png", 1), ("b/z.JPG", 1), ("b/sub1/d.WEBP", 1), ("b/sub2/c.jpeg", 1), ("c/q.TIFF", 2),
    ]  # fmt: skip


def test_label_file_format_tolerance(tmp_path: Path):
    (tmp_path / "val").mkdir()
    for k in (1, 2, 3):
        Image.new("RGB", (4, 4)).save(tmp_path / "val" / f"ILSVRC2012_val_{k:08d}.JPEG", format="JPEG")
    labels = tmp_path / "val_label.txt"
    # CRLF, trailing blanks, a blank line; the label file may name the image by another extension (stem match)
    labels.write_bytes(b"ILSVRC2012_val_00000001.JPEG 65\r\nILSVRC2012_val_00000002.JPEG 0   \r\n\r\n"
                       b"ILSVRC2012_val_00000003.png 999\r\n")  # fmt: skip
    ds = read_dataset(tmp_path / "val", labels)
    assert ds.problems == []
    assert [(it.name, it.label) for it in ds.items] == [
        ("ILSVRC2012_val_00000001.JPEG", 65),
        ("ILSVRC2012_val_00000002.JPEG", 0),
        ("ILSVRC2012_val_00000003.JPEG", 999),
    ]


def test_label_file_problems_are_collected(tmp_path: Path):
    (tmp_path / "val").mkdir()
    for k in range(1, 9):
        Image.new("RGB", (4, 4)).save(tmp_path / "val" / f"img_{k}.JPEG", format="JPEG")
    Image.new("RGB", (4, 4)).save(tmp_path / "val" / "img_8.png")  # second file with stem img_8
    labels = tmp_path / "val_label.txt"
    labels.write_text(
        "img_1.JPEG 1\n"
        "img_2.JPEG 1000\n"  # out of range
        "img_3.JPEG -1\n"  # out of range
        "img_4.JPEG 4\nimg_4.JPEG 4\n"  # duplicate entry (even with the same label)
        "img_5.JPEG five\n"  # not an integer
        "img_6.JPEG 6 extra\n"  # three fields
        "img_9.JPEG 9\n"  # listed, no image
        "img_8.JPEG 8\n"  # two images share the stem
    )  # img_7 has no label
    ds = read_dataset(tmp_path / "val", labels)
    assert [it.name for it in ds.items] == ["img_1.JPEG"]
    reasons = dict(ds.problems)
    assert set(reasons) == {f"img_{k}.JPEG" for k in range(2, 10)}
    assert "line 2" in reasons["img_2.JPEG"] and "out of range" in reasons["img_2.JPEG"]
    assert "out of range" in reasons["img_3.JPEG"]
    assert "duplicate" in reasons["img_4.JPEG"] and "lines 4 and 5" in reasons["img_4.JPEG"]
    assert "not an integer" in reasons["img_5.JPEG"] and "line 6" in reasons["img_5.JPEG"]
    assert "line 7" in reasons["img_6.JPEG"]
    assert "no label" in reasons["img_7.JPEG"]
    assert "no image" in reasons["img_9.JPEG"]
    assert "duplicate" in reasons["img_8.JPEG"]
    assert ds.size == 9


def test_unlabelled_flat_folder(tmp_path: Path):
    """Every file counts: GIF and JFIF are read, anything else (a hidden file too) is a problem (never silently left
    out)."""
    for name in ["b.png", "a.JPEG", "c.jpg", "d.gif", "e.jfif", "readme.txt", ".DS_Store"]:
        path = tmp_path / name
        if name.endswith((".txt", "Store")):
            path.write_text("x")
        else:
            Image.new("RGB", (4, 4)).save(path, format={"png": "PNG", "gif": "GIF"}.get(name[-3:], "JPEG"))
    ds = read_dataset(tmp_path, None)
    assert ds.kind == "flat" and not ds.labelled and ds.num_classes is None
    assert [(it.name, it.label) for it in ds.items] == [("a.JPEG", None), ("b.png", None), ("c.jpg", None),
                                                        ("d.gif", None), ("e.jfif", None)]
    assert dict(ds.problems) == {".DS_Store": HIDDEN, "readme.txt": dict(ds.problems)["readme.txt"]}
    assert ds.size == 7 and dict(ds.problems)["readme.txt"].startswith("not an image file (reads .jpg, ")
    one = read_dataset(tmp_path / "b.png", None)
    assert [it.name for it in one.items] == ["b.png"]


def test_source_hash_is_content_stable(sample: Path, tmp_path: Path):
    shutil.copytree(sample / "imagenet", tmp_path / "imagenet")
    a = read_dataset(sample / "imagenet/val", sample / "imagenet/val_label.txt").source_hash()
    copy = tmp_path / "imagenet"
    first = copy / "val" / "ILSVRC2012_val_00000001.JPEG"
    os.utime(first, (1, 1))  # mtime is not content
    assert read_dataset(copy / "val", copy / "val_label.txt").source_hash() == a
    lines = (copy / "val_label.txt").read_text().splitlines()
    lines[0] = lines[0].split()[0] + " 3"
    (copy / "val_label.txt").write_text("\n".join(lines) + "\n")
    assert read_dataset(copy / "val", copy / "val_label.txt").source_hash() != a


# --- CIFAR-10 -------------------------------------------------------------------------------------------


def _cifar_dict(n: int = 20, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "batch_label": "testing batch 1 of 1",
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"f{k}.png" for k in range(n)],
    }


def _bytes_keys(d: dict) -> dict:
    return {k.encode(): ([v.encode() for v in val] if k == "filenames" else val.encode() if isinstance(val, str)
                         else val) for k, val in d.items()}  # fmt: skip


@pytest.mark.parametrize("flavour", ["py2", "py3-str", "py3-bytes", "py3-protocol5"])
def test_cifar_key_flavours(tmp_path: Path, flavour: str):
    d = _cifar_dict()
    blob = {
        "py2": lambda: py2_pickle(d),
        "py3-str": lambda: pickle.dumps(d, protocol=2),
        "py3-bytes": lambda: pickle.dumps(_bytes_keys(d), protocol=4),
        "py3-protocol5": lambda: pickle.dumps(d, protocol=5),  # numpy stores the array via _frombuffer
    }[flavour]()
    (tmp_path / "test_batch").write_bytes(blob)
    ds = read_dataset(tmp_path, None)
    assert ds.kind == "cifar10" and ds.num_classes == 10 and ds.problems == []
    assert [it.label for it in ds.items] == d["labels"]
    assert [it.row for it in ds.items] == list(range(20))
    np.testing.assert_array_equal(ds.pixels(np.arange(20)), d["data"].reshape(20, 3, 32, 32))
    assert load_cifar_batch(tmp_path / "test_batch")["filenames"][3] == "f3.png"


def test_cifar_sample_loads_with_both_encodings(sample: Path):
    folder = sample / "cifar-10-batches-py"
    for enc, key in (("bytes", b"data"), ("latin1", "data")):
        with open(folder / "test_batch", "rb") as f:
            d = pickle.load(f, encoding=enc)
        assert d[key].dtype == np.uint8 and d[key].shape == (64, 3072)
    ds = read_dataset(sample, None)  # the parent of cifar-10-batches-py is accepted too, what else it holds listed
    assert ds.kind == "cifar10" and len(ds.items) == 64
    assert [n for n, _ in ds.problems] == [".omzoo-output", "SAMPLE.json", "imagenet/"]
    assert ds.class_names[0] == "airplane" and len(ds.class_names) == 10


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(data=d["data"].astype(np.int16)), "uint8"),
        (lambda d: d.update(data=d["data"][:, :3000]), "3072"),
        (lambda d: d.update(labels=d["labels"][:-1]), "one per row"),
        (lambda d: d.pop("labels"), "labels"),
    ],
)
def test_cifar_structure_errors(tmp_path: Path, mutate, match):
    d = _cifar_dict()
    mutate(d)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(d, protocol=2))
    with pytest.raises(DataError, match=match):
        read_dataset(tmp_path, None)


def test_cifar_label_out_of_range_is_a_problem(tmp_path: Path):
    d = _cifar_dict()
    d["labels"][5] = 10
    (tmp_path / "test_batch").write_bytes(py2_pickle(d))
    ds = read_dataset(tmp_path, None)
    assert ds.problems == [("image_5", "test_batch row 5: label 10 out of range 0..9")]
    assert len(ds.items) == 19 and ds.size == 20


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_refuses_code_in_pickles(tmp_path: Path, protocol: int):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'PWNED'}",))

    d = {"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": Evil()}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(d, protocol=protocol))
    with pytest.raises(DataError, match=f"refusing to load global {os.system.__module__}.system"):
        read_dataset(tmp_path, None)
    assert not (tmp_path / "PWNED").exists()


def test_missing_data_and_labels_with_cifar(tmp_path: Path, sample: Path):
    with pytest.raises(DataError, match="no such"):
        read_dataset(tmp_path / "nope", None)
    with pytest.raises(DataError, match="its own labels"):
        read_dataset(sample / "cifar-10-batches-py", sample / "imagenet/val_label.txt")


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, format="PNG" if path.suffix == ".png" else "GIF")


def test_imagefolder_lists_every_stray_as_a_problem(tmp_path: Path) -> None:
    """Files beside the class folders, non-images and hidden files inside them are problems, never silently left
    out."""
    for name in ("a.png", "b.png", "cat/c.png", "cat/d.gif"):
        _png(tmp_path / name)
    (tmp_path / "cat" / "notes.txt").write_text("x")
    (tmp_path / "cat" / ".DS_Store").write_text("x")  # hidden: not the user's image, but listed
    _png(tmp_path / ".ipynb_checkpoints" / "e.png")  # a hidden folder: not a class, listed
    ds = read_dataset(tmp_path)
    assert ds.kind == "imagefolder" and [i.name for i in ds.items] == ["cat/c.png"] and ds.class_names == ["cat"]
    assert [n for n, _ in ds.problems] == [".ipynb_checkpoints/", "a.png", "b.png", "cat/.DS_Store", "cat/d.gif",
                                           "cat/notes.txt"]
    assert ds.size == 7


def test_imagefolder_walks_each_folder_once(tmp_path: Path) -> None:
    """A symlink loop (or two links to one folder) lists each image once and reports the folder reached again."""
    _png(tmp_path / "cat" / "a.png")
    (tmp_path / "cat" / "loop").symlink_to("..")
    (tmp_path / "cat" / "again").symlink_to(tmp_path / "cat")
    ds = read_dataset(tmp_path)
    assert [i.name for i in ds.items] == ["cat/a.png"]
    assert sorted(n for n, _ in ds.problems) == ["cat/again/", "cat/loop/cat/"]  # loop = the root: cat again


def test_a_labelled_flat_folder_lists_sub_folders_and_hidden_files(tmp_path: Path) -> None:
    """D16: images in a sub-folder and hidden images of a labelled flat folder are listed, not silently skipped."""
    for name in ("a.png", "b.png", "more/c.png", "more/d.png", ".e.png"):
        _png(tmp_path / "val" / name)
    (tmp_path / "val" / ".hidden").mkdir()
    (tmp_path / "labels.txt").write_text("a.png 1\nb.png 2\n")
    ds = read_dataset(tmp_path / "val", tmp_path / "labels.txt")
    assert [i.name for i in ds.items] == ["a.png", "b.png"]
    assert dict(ds.problems) == {".e.png": HIDDEN, ".hidden/": HIDDEN, "more/": dict(ds.problems)["more/"]}
    assert dict(ds.problems)["more/"].startswith("a sub-folder of a flat folder of images: not read") and ds.size == 5


@pytest.mark.parametrize("given", ["parent", "batches"])
def test_a_cifar_folder_lists_what_else_it_holds(sample: Path, tmp_path: Path, given: str) -> None:
    """D17: a folder holding cifar-10-batches-py/ is read as CIFAR-10; its images, class folders and other files (in
    it or in the batches folder) are listed, while the distribution's own files (training batches, readme, the
    archive beside the folder) are not strays."""
    batches = tmp_path / "mix" / "cifar-10-batches-py"
    shutil.copytree(sample / "cifar-10-batches-py", batches)
    for name in ("data_batch_1", "readme.html"):
        (batches / name).write_text("x")
    (tmp_path / "mix" / "cifar-10-python.tar.gz").write_text("x")
    _png(tmp_path / "mix" / "a.png")
    _png(tmp_path / "mix" / "cats" / "b.png")
    _png(batches / "c.png")
    (batches / ".DS_Store").write_text("x")
    ds = read_dataset(tmp_path / "mix" if given == "parent" else batches)
    assert ds.kind == "cifar10" and len(ds.items) == 64
    prefix = "cifar-10-batches-py/" if given == "parent" else ""
    strays = ([f"{prefix}.DS_Store", "a.png", "cats/", f"{prefix}c.png"] if given == "parent" else
              [".DS_Store", "c.png"])
    assert sorted(n for n, _ in ds.problems) == sorted(strays) and ds.size == 64 + len(strays)


def test_a_labelled_flat_folder_reports_non_images(tmp_path: Path) -> None:
    _png(tmp_path / "val" / "a.png")
    (tmp_path / "val" / "readme.txt").write_text("x")
    (tmp_path / "labels.txt").write_text("a.png 3\n")
    ds = read_dataset(tmp_path / "val", tmp_path / "labels.txt")
    assert [i.label for i in ds.items] == [3] and [n for n, _ in ds.problems] == ["readme.txt"]


@pytest.mark.parametrize("label", ["1_0", "٣", "+3", "10"])
def test_labels_are_ascii_digits_within_the_models_classes(tmp_path: Path, label: str) -> None:
    _png(tmp_path / "val" / "a.png")
    (tmp_path / "labels.txt").write_text(f"a.png {label}\n", encoding="utf-8")
    ds = read_dataset(tmp_path / "val", tmp_path / "labels.txt", num_classes=10)
    assert not ds.items and len(ds.problems) == 1
    assert ("out of range 0..9" if label == "10" else "is not an integer") in ds.problems[0][1]


def test_a_fifo_as_labels_is_refused_not_read(tmp_path: Path) -> None:
    _png(tmp_path / "val" / "a.png")
    os.mkfifo(tmp_path / "labels.txt")
    with pytest.raises(DataError, match="labels.txt: is a FIFO"):
        read_dataset(tmp_path / "val", tmp_path / "labels.txt")


def test_a_deeply_nested_batch_is_named_not_a_recursion_error(tmp_path: Path) -> None:
    depth = 100_000
    (tmp_path / "test_batch").write_bytes(b"\x80\x02}U\x06labels" + b"]" * depth + b"a" * (depth - 1) + b"s.")
    with pytest.raises(DataError, match="test_batch: not a readable CIFAR python batch: nested too deeply"):
        load_cifar_batch(tmp_path / "test_batch")


def test_a_batch_of_shared_lists_is_walked_once_per_object(tmp_path: Path) -> None:
    """D12: 40 levels of [L, L] (2**40 paths, a 19 KB file) convert at once, sharing kept; a cycle ends."""
    nested: list = []
    for _ in range(40):
        nested = [nested, nested]
    cycle: list = []
    cycle.append(cycle)
    d = {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3], "batch_label": nested, "x": cycle}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(d, protocol=2))
    batch = load_cifar_batch(tmp_path / "test_batch")
    assert batch["batch_label"][0] is batch["batch_label"][1] and batch["x"][0] is batch["x"]
    assert len(read_dataset(tmp_path).items) == 4


def test_a_batch_holding_too_many_entries_is_refused_by_name(tmp_path: Path, monkeypatch) -> None:
    import omzoo.data.readers as readers

    monkeypatch.setattr(readers, "MAX_BATCH_ENTRIES", 1000)
    d = {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1, 2, 3], "x": [[0] * 100] * 3 + [list(range(999))]}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(d, protocol=2))
    with pytest.raises(DataError, match="test_batch: not a readable CIFAR python batch: its lists and dicts hold more "
                                        "than 1000 entries"):
        load_cifar_batch(tmp_path / "test_batch")
