"""Dataset readers: turn a folder on disk into an ordered list of (image, label) items.

Layouts (docs/datasets.md):
- ``flat``: images directly in a folder plus a ``val_label.txt`` (``<file> <label>`` lines), matched by
  file stem ``name.split('.')[0]`` as the Ascend scripts do; items sorted by file name.
- ``imagefolder``: one sub-folder per class; class index = rank of the folder name in Python string
  sort; sample order and extensions exactly as torchvision ``ImageFolder`` (what SPACH uses).
- ``cifar10``: the python-version folder with ``test_batch`` (+ ``batches.meta``); row order is the
  evaluation order.
- an unlabelled ``flat`` folder (no labels file, no class sub-folders): the user's own images for
  ``omzoo predict``, labels ``None``. Every file in it counts: one that is not an image (by extension) is a
  problem, not silently left out.

Flat folders also read GIF (first frame) and JFIF/JPE (JPEG under other names), which Pillow decodes and
users' photos come in; ImageFolder trees keep torchvision's extensions exactly, so they list what it lists.

Label-file and layout problems are *collected* (``Dataset.problems``), never raised one at a time, so the
caller can report every bad entry in one message -- or skip them (``skip_bad``). Problem entries
are not in ``Dataset.items``; ``Dataset.size`` counts both. Nothing under the data folder is dropped unreported, in
any layout: every entry of a folder (``_entries``) is read or listed. A file that is not an image, one beside the
class folders of an ImageFolder tree, a sub-folder of a labelled flat folder, anything beside the CIFAR-10 files (in
the batches folder, or beside ``cifar-10-batches-py/`` in the folder given), a hidden (dot) file or folder (never a
class: torchvision would count ``.ipynb_checkpoints`` and shift every class index), a folder reached twice through a
symlink (a loop would list it forever) is a problem, never silently left out or listed twice. Labels are checked
against the classes of the model that reads them (``num_classes``), read as ASCII digits only (``1_0`` and ``٣`` are
not labels), and files are opened by omzoo.core.io.open_regular (a FIFO given as labels fails, it never blocks).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from omzoo.core.io import NotRegular, open_regular
from omzoo.core.params import decimal
from omzoo.data import DataError

__all__ = ["FLAT_EXTENSIONS", "IMG_EXTENSIONS", "Dataset", "Item", "read_dataset", "load_cifar_batch",
           "IMAGENET_CLASSES"]

#: torchvision ``IMG_EXTENSIONS`` (ImageFolder trees), matched case-insensitively on the end of the file name.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: What a flat folder's images may be: torchvision's list plus GIF and JPEG's other names.
FLAT_EXTENSIONS = IMG_EXTENSIONS + (".gif", ".jfif", ".jpe")
#: Label range of ``val_label.txt`` files: 0-based sorted-WNID index (docs/datasets.md §1.1).
IMAGENET_CLASSES = 1000
CIFAR_CLASSES = 10
CIFAR_NUM_VIS = 3 * 32 * 32
#: the CIFAR-10 python distribution's files: its batches folder (only test_batch and batches.meta are read; the training
#: batches and readme are its own, not strays) and, beside that folder, the archive it came in
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = frozenset({"test_batch", "batches.meta", "readme.html", *(f"data_batch_{k}" for k in range(1, 6))})
CIFAR_BESIDE = frozenset({CIFAR_FOLDER, "cifar-10-python.tar.gz"})
#: why a hidden entry is a problem
HIDDEN = "hidden (its name starts with '.'): not read as an image or a class"
#: the most a labels file or a CIFAR batch may weigh (the real ones: 0.6 MB and 31 MB)
MAX_LABELS_BYTES = 64 << 20
MAX_BATCH_BYTES = 1 << 30
#: the most list items and dict entries a CIFAR batch may hold, each shared list or dict counted once (a real
#: test_batch holds about 20000: 10000 labels and 10000 file names)
MAX_BATCH_ENTRIES = 10_000_000


@dataclass
class Item:
    """One sample. ``path`` for image files, ``row`` for CIFAR rows; ``label`` None when unlabelled."""

    name: str
    label: int | None
    path: Path | None = None
    row: int | None = None


@dataclass
class Dataset:
    """Items in dataset (= evaluation) order, plus every problem found while listing them."""

    kind: Literal["flat", "imagefolder", "cifar10"]
    root: Path
    items: list[Item]
    num_classes: int | None
    problems: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] | None = None
    #: (relative name, byte size) of every source file: the content-stable input to ``source_hash``
    files: list[tuple[str, int]] = field(default_factory=list)
    labels_file: Path | None = None
    _cifar: np.ndarray | None = field(default=None, repr=False)

    @property
    def labelled(self) -> bool:
        return self.kind != "flat" or self.labels_file is not None

    @property
    def size(self) -> int:
        """Entries in the dataset, good or not: ``len(items) + len(problems)``."""
        return len(self.items) + len(self.problems)

    def pixels(self, rows: Sequence[int] | np.ndarray | slice) -> np.ndarray:
        """CIFAR rows as uint8 NCHW RGB (row = 1024 R, 1024 G, 1024 B values, each plane row-major)."""
        if self._cifar is None:
            raise TypeError(f"{self.kind} dataset has no in-memory pixels; decode item.path instead")
        return self._cifar[rows].reshape(-1, 3, 32, 32)

    def source_hash(self) -> str:
        """sha256 over the sorted (relative path, byte size) of every source file, plus the labels file's sha256.

        Content-stable: mtimes are left out (a copy or ``dvc checkout`` changes them, not the data); a
        changed label changes the hash through the labels file's own sha256.
        """
        labels_sha = None
        if self.labels_file is not None and self.labels_file.is_file():
            labels_sha = hashlib.sha256(self.labels_file.read_bytes()).hexdigest()
        payload = {"files": sorted([n, s] for n, s in self.files), "labels_sha256": labels_sha}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def _is_image(name: str, extensions: tuple[str, ...] = IMG_EXTENSIONS) -> bool:
    return name.lower().endswith(extensions)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def read_dataset(data: Path | str, labels: Path | str | None = None, num_classes: int | None = None) -> Dataset:
    """Detect the layout of ``data`` and list its items.

    ``labels`` (a ``val_label.txt``) selects the labelled flat layout; without it, a folder holding
    ``test_batch`` is CIFAR-10 (also accepted: its parent holding ``cifar-10-batches-py/``), a folder with
    class sub-folders is an ImageFolder, and anything else is an unlabelled flat folder. A single image
    file is an unlabelled one-item dataset. ``num_classes`` bounds labels (default 1000 for label files,
    10 for CIFAR, the folder count for ImageFolder).

    Raises :class:`DataError` for structural problems that leave nothing to list (missing folder,
    unreadable labels file, corrupt CIFAR batch); per-entry problems go to ``Dataset.problems``.
    """
    data = Path(data)
    labels = Path(labels) if labels not in (None, "") else None
    if not data.exists():
        raise DataError(f"{data}: no such file or directory")
    if not data.is_dir():  # one file: opened (and a FIFO or device refused) where it is decoded
        if labels is not None:
            raise DataError(f"{data}: a labels file needs a folder of images, not a single file")
        item = Item(data.name, None, data)
        return Dataset("flat", data.parent, [item], None, files=[(data.name, _size(data))])
    if labels is None:
        for candidate in (data, data / CIFAR_FOLDER):
            if _holds_batch(candidate):
                return _read_cifar(candidate, num_classes, data)
    elif _holds_batch(data):
        raise DataError(f"{data}: a CIFAR-10 batch carries its own labels; do not pass --labels ({labels})")
    entries = _entries(data)
    if labels is not None:
        return _read_flat(data, entries, labels, IMAGENET_CLASSES if num_classes is None else num_classes)
    class_dirs = [name for name, is_dir in entries if is_dir and not _hidden(name)]
    if class_dirs:
        return _read_imagefolder(data, entries, class_dirs, num_classes)
    return _read_flat(data, entries, None, None)


def _entries(folder: Path) -> list[tuple[str, bool]]:
    """Every entry of `folder`, hidden ones included, as (name, whether it is a folder or a link to one), sorted by
    name: each reader reads or lists all of them."""
    with os.scandir(folder) as it:
        return sorted((e.name, e.is_dir()) for e in it)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _shown(name: str, is_dir: bool, prefix: str = "") -> str:
    """How a problem names an entry: relative to the data folder, a folder with a trailing '/'."""
    return f"{prefix}{name}/" if is_dir else f"{prefix}{name}"


def _stray(name: str, is_dir: bool, reason: str, prefix: str = "") -> tuple[str, str]:
    """An entry a layout does not read, as a problem: named as _shown names it, and why (HIDDEN for a dot entry,
    whatever the layout, else `reason`)."""
    return _shown(name, is_dir, prefix), HIDDEN if _hidden(name) else reason


def _holds_batch(folder: Path) -> bool:
    """Whether `folder` holds a CIFAR `test_batch`: any entry of that name but a folder (a FIFO or a device there is
    then refused by the opener, by name, rather than read as an empty image folder)."""
    entry = folder / "test_batch"
    return (entry.exists() or entry.is_symlink()) and not entry.is_dir()


def _not_image(name: str) -> str:
    return f"not an image file (reads {', '.join(FLAT_EXTENSIONS)})"


def _read_flat(data: Path, entries: list[tuple[str, bool]], labels: Path | None, num_classes: int | None) -> Dataset:
    """The images of a flat folder; every other entry (a non-image, a hidden entry, a sub-folder: the labels file
    names the folder's own images) is a problem."""
    images = [(n, data / n) for n, is_dir in entries
              if not is_dir and not _hidden(n) and _is_image(n, FLAT_EXTENSIONS)]
    files = [(n, _size(p)) for n, p in images]
    others = [_stray(n, is_dir, "a sub-folder of a flat folder of images: not read (the labels file names the "
                     "folder's own images)" if is_dir else _not_image(n))
              for n, is_dir in entries if _hidden(n) or is_dir or not _is_image(n, FLAT_EXTENSIONS)]
    if labels is None:
        items = [Item(n, None, p) for n, p in images]
        return Dataset("flat", data, items, None, others, files=files)

    table, problems = parse_label_file(labels, num_classes)
    # problems are keyed by entry stem; several reasons for one entry are joined into one line
    reasons: dict[str, list[str]] = {stem: [r] for stem, (_, r) in problems.items()}
    display: dict[str, str] = {stem: n for stem, (n, _) in problems.items()}
    for name, reason in others:
        display[name] = name
        reasons.setdefault(name, []).append(reason)

    by_stem: dict[str, list[tuple[str, Path]]] = {}
    for name, path in images:
        by_stem.setdefault(name.split(".")[0], []).append((name, path))

    items: list[Item] = []
    for stem, found in by_stem.items():
        name, path = found[0]
        display[stem] = name
        if len(found) > 1:
            others = ", ".join(n for n, _ in found)
            reasons.setdefault(stem, []).append(f"duplicate entry: image files {others} share the stem {stem!r}")
        if stem in reasons:
            continue
        if stem not in table:
            reasons[stem] = [f"image has no label in {labels.name}"]
            continue
        items.append(Item(name, table[stem][1], path))
    for stem, (name, _label, lineno) in table.items():
        if stem not in by_stem:
            display.setdefault(stem, name)
            reasons.setdefault(stem, []).append(f"listed in {labels.name} line {lineno} but no image file in {data}")
    items.sort(key=lambda it: it.name)
    problem_list = sorted((display[s], "; ".join(r)) for s, r in reasons.items())
    ds = Dataset("flat", data, items, num_classes, problem_list, files=files, labels_file=labels)
    return ds


def parse_label_file(
    labels: Path, num_classes: int | None
) -> tuple[dict[str, tuple[str, int, int]], dict[str, tuple[str, str]]]:
    """Parse ``<file> <label>`` lines; returns ({stem: (name, label, line)}, {stem: (name, reason)}).

    ``split()`` per line, so trailing blanks and CRLF are harmless; blank lines are ignored. Rejected,
    with the line number: not exactly two fields, a non-integer label, a label outside
    ``0..num_classes-1``, and a stem listed twice (both lines are rejected: which label is right is unknown).
    """
    try:
        with open_regular(labels, MAX_LABELS_BYTES, "labels file") as f:
            text = f.read().decode("utf-8-sig")
    except NotRegular as exc:
        raise DataError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{labels}: cannot read labels file: {exc}") from exc
    table: dict[str, tuple[str, int, int]] = {}
    problems: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    where = labels.name
    for lineno, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields:
            continue
        name = fields[0]
        stem = name.split(".")[0]
        if stem in first_line:
            table.pop(stem, None)
            prev = problems.get(stem, (name, ""))[1]
            msg = f"duplicate entry in {where}: lines {first_line[stem]} and {lineno}"
            problems[stem] = (name, f"{prev}; {msg}" if prev else msg)
            continue
        first_line[stem] = lineno
        if len(fields) != 2:
            problems[stem] = (name, f"{where} line {lineno}: expected '<file> <label>', got {line.strip()!r}")
            continue
        label = decimal(fields[1])
        if label is None:
            problems[stem] = (name, f"{where} line {lineno}: label {fields[1]!r} is not an integer")
            continue
        if label < 0 or (num_classes is not None and label >= num_classes):
            hi = "" if num_classes is None else f"..{num_classes - 1}"
            problems[stem] = (name, f"{where} line {lineno}: label {label} out of range 0{hi}")
            continue
        table[stem] = (name, label, lineno)
    return table, problems


def _read_imagefolder(data: Path, entries: list[tuple[str, bool]], classes: list[str],
                      num_classes: int | None) -> Dataset:
    """torchvision ``make_dataset`` order: classes sorted; per class ``sorted(os.walk(...))``, files sorted.

    What torchvision leaves out silently is a problem here: a file beside the class folders, a file in one that is
    not an image by torchvision's extensions, a folder reached again through a symlink (each real folder is walked
    once, so a loop ends)."""
    if num_classes is not None and len(classes) > num_classes:
        raise DataError(f"{data}: {len(classes)} class folders but the model has {num_classes} classes")
    items: list[Item] = []
    files: list[tuple[str, int]] = []
    problems = [_stray(n, is_dir, f"a file beside the class folders ({', '.join(classes[:3])}...), in none of them")
                for n, is_dir in entries if _hidden(n) or not is_dir]
    seen: set[tuple[int, int]] = set()
    for index, cls in enumerate(classes):
        walked: list[tuple[str, list[str]]] = []
        for root, dirs, fnames in os.walk(data / cls, followlinks=True):
            info = os.stat(root)
            if (info.st_dev, info.st_ino) in seen:
                problems.append((Path(root).relative_to(data).as_posix() + "/",
                                 "a folder reached again through a symlink (a loop, or a second link to it): its "
                                 "images are listed once, under their first path"))
                dirs.clear()
                continue
            seen.add((info.st_dev, info.st_ino))
            problems += [(Path(root, d).relative_to(data).as_posix() + "/", HIDDEN) for d in dirs if _hidden(d)]
            dirs[:] = [d for d in dirs if not _hidden(d)]
            walked.append((root, fnames))
        for root, fnames in sorted(walked):
            for fname in sorted(fnames):
                path = Path(root) / fname
                rel = path.relative_to(data).as_posix()
                if _hidden(fname):
                    problems.append((rel, HIDDEN))
                    continue
                if not _is_image(fname):
                    problems.append((rel, "not an image file of an ImageFolder tree (reads "
                                          f"{', '.join(IMG_EXTENSIONS)})"))
                    continue
                items.append(Item(rel, index, path))
                files.append((rel, _size(path)))
    return Dataset(
        "imagefolder",
        data,
        items,
        len(classes) if num_classes is None else num_classes,
        sorted(problems),
        class_names=classes,
        files=files,
    )


# --- CIFAR-10 python batches ------------------------------------------------------------------------

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    # Protocol 5 stores a contiguous array as its raw bytes plus _frombuffer(buf, dtype, shape, order):
    # numpy.frombuffer and a reshape, nothing else.
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    ("_codecs", "encode"): ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file must not be able to run code."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            mod, attr = _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a CIFAR batch") from None
        import importlib

        return getattr(importlib.import_module(mod), attr)


def _str_keys(obj: Any, path: Path) -> Any:
    """Python-2 ``str`` arrives as ``bytes`` (encoding='bytes') or ``str`` (latin1); normalise to ``str``.

    A pickle may reference one list or dict many times (a 19 KB file can nest 40 levels of ``[L, L]``, 2**40 paths),
    so each is converted once, and stays shared (or cyclic) in the result; and the entries walked are counted, so
    a batch holding more than MAX_BATCH_ENTRIES is refused, naming the file, instead of exhausting memory."""
    done: dict[int, Any] = {}
    budget = MAX_BATCH_ENTRIES

    def walk(o: Any) -> Any:
        nonlocal budget
        if isinstance(o, bytes):
            return o.decode("latin1")
        if not isinstance(o, (dict, list)):
            return o
        if id(o) in done:
            return done[id(o)]
        budget -= len(o)
        if budget < 0:
            raise DataError(f"{path}: not a readable CIFAR python batch: its lists and dicts hold more than "
                            f"{MAX_BATCH_ENTRIES} entries (a real batch: about 20000)")
        if isinstance(o, list):
            items: list[Any] = []
            done[id(o)] = items
            items.extend([walk(v) for v in o])
            return items
        mapping: dict[Any, Any] = {}
        done[id(o)] = mapping
        for k, v in o.items():
            mapping[walk(k)] = v if isinstance(v, np.ndarray) else walk(v)
        return mapping

    return walk(obj)


def load_cifar_batch(path: Path) -> dict[str, Any]:
    """Load a CIFAR python batch (Python-2 cPickle) with ``encoding='latin1'``; keys returned as ``str``.

    Bytes keys (a file re-pickled after ``encoding='bytes'``) and str keys are both accepted.
    """
    try:
        with open_regular(path, MAX_BATCH_BYTES, "CIFAR batch") as f:
            raw = f.read()
    except NotRegular as exc:
        raise DataError(str(exc)) from None
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except RecursionError:
        raise DataError(f"{path}: not a readable CIFAR python batch: nested too deeply") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError) as exc:
        raise DataError(f"{path}: not a readable CIFAR python batch: {' '.join(str(exc).split())}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    try:
        return _str_keys(obj, path)
    except RecursionError:
        raise DataError(f"{path}: not a readable CIFAR python batch: nested too deeply") from None


def _cifar_strays(folder: Path, data: Path) -> list[tuple[str, str]]:
    """Every entry of the batches folder that is not the distribution's and, when `data` is its parent, every entry of
    `data` beside it (images, class folders): a folder holding cifar-10-batches-py/ is read as CIFAR-10, so what
    else it holds is listed, never silently left out."""
    levels = [(folder, CIFAR_FILES, f"{folder.relative_to(data).as_posix()}/" if folder != data else "",
               "not a file of the CIFAR-10 batches folder (reads test_batch, batches.meta): not read")]
    if folder != data:
        levels.append((data, CIFAR_BESIDE, "", f"beside {CIFAR_FOLDER}/, which is read as CIFAR-10: not read"))
    return [_stray(n, is_dir, reason, prefix)
            for where, known, prefix, reason in levels for n, is_dir in _entries(where) if n not in known]


def _read_cifar(folder: Path, num_classes: int | None, given: Path) -> Dataset:
    path = folder / "test_batch"
    batch = load_cifar_batch(path)
    data = batch.get("data")
    labels = batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_NUM_VIS:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, {CIFAR_NUM_VIS}), got {what}")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list) or len(labels) != data.shape[0]:
        got = len(labels) if isinstance(labels, list) else type(labels).__name__
        raise DataError(f"{path}: 'labels' must be a list of {data.shape[0]} ints (one per row), got {got}")

    class_names = None
    meta_path = folder / "batches.meta"
    files = [("test_batch", _size(path))]
    if meta_path.exists() or meta_path.is_symlink():  # a folder, FIFO or dangling link there is refused by name
        meta = load_cifar_batch(meta_path)
        names = meta.get("label_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{meta_path}: 'label_names' must be a list of strings")
        class_names = names
        if meta.get("num_vis", CIFAR_NUM_VIS) != CIFAR_NUM_VIS:
            raise DataError(f"{meta_path}: num_vis is {meta.get('num_vis')}, expected {CIFAR_NUM_VIS}")
        files.append(("batches.meta", _size(meta_path)))
    n_cls = num_classes if num_classes is not None else (len(class_names) if class_names else CIFAR_CLASSES)

    items: list[Item] = []
    problems = _cifar_strays(folder, given)
    for row, label in enumerate(labels):
        # Named like the original RAN preprocess output (image_{k}.bin); row k is evaluation position k.
        name = f"image_{row}"
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < n_cls:
            problems.append((name, f"test_batch row {row}: label {label!r} out of range 0..{n_cls - 1}"))
            continue
        items.append(Item(name, int(label), None, row))
    return Dataset("cifar10", folder, items, n_cls, problems, class_names=class_names, files=files, _cifar=data)
