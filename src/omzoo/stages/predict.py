"""`omzoo predict`: classify your own images with a model's exact evaluation preprocessing.

The same code paths as the pipeline: the images are decoded and preprocessed into temporary uint8 shards
and run through the torch backend (from a checkpoint) or the ONNX Runtime backend (from an ONNX file, checked
against the model's input and classes before anything runs). Every file given is read or reported: a bad one
stops the run with the list, or with --skip-bad is left out and listed; non-finite logits fail by file name.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from omzoo.backends.base import Backend, get_backend, run_shards
from omzoo.core import zoo
from omzoo.core.checkpoints import read_checkpoint, save_container
from omzoo.core.io import save_npy_atomic
from omzoo.core.metrics import check_finite, topk, topk_accuracy
from omzoo.core.params import batch_size, positive_int
from omzoo.data.preprocess import preprocess
from omzoo.data.shards import ShardSet

HELP = "classify a folder of images (or a CIFAR-10 batch folder) and write float32 logits in dataset order"


class Prediction(NamedTuple):
    logits: np.ndarray  # N x classes, float32, dataset order
    names: list[str]
    labels: np.ndarray | None
    skipped: list[dict[str, Any]]  # {"name", "reason"} of each file left out (skip_bad only)


def open_backend(spec: zoo.ModelSpec, checkpoint: Path | None, onnx: Path | None, batch_size: int) -> Backend:
    if (checkpoint is None) == (onnx is None):
        raise ValueError("give exactly one of --checkpoint and --onnx")
    if onnx is not None:
        backend, artefact = get_backend("onnxruntime"), onnx
    else:
        backend, artefact = get_backend("torch"), checkpoint  # its defaults: the best device, fp32
    backend.load(artefact, batch_size, spec)
    return backend


def predict(model_id: str, data: Path, labels: Path | None, checkpoint: Path | None = None,
            onnx: Path | None = None, batch_size: int = 16, workers: int | None = None,
            trust_checkpoint: bool = False, skip_bad: bool = False) -> Prediction:
    """Logits, image names and labels (or None) in dataset order, and the files skipped (only with `skip_bad`)."""
    spec = zoo.get(model_id)
    model_file = onnx or checkpoint  # the file the user named, for messages
    with tempfile.TemporaryDirectory(prefix="omzoo-predict-") as tmp:
        if checkpoint is not None and trust_checkpoint:
            # The torch backend reads with the safe unpickler only: hand it the trusted file's tensors.
            trusted, checkpoint = checkpoint, Path(tmp) / "checkpoint.pth"
            save_container(read_checkpoint(trusted, trust=True).state_dict, checkpoint, "state_dict")
        backend = open_backend(spec, checkpoint, onnx, batch_size)
        try:
            manifest = preprocess(spec.recipe, data, labels, Path(tmp) / "shards", workers=workers,
                                  skip_bad=skip_bad, skip_hint="--skip-bad skips them and lists them",
                                  num_classes=spec.num_classes)
            shards = ShardSet(Path(tmp) / "shards")
            logits, _ = run_shards(backend, shards, batch_size)
        finally:
            backend.close()
        check_finite(logits, model_file)
        return Prediction(logits, list(shards.names), shards.labels, manifest["skipped"])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="published-container checkpoint (runs in PyTorch)")
    src.add_argument("--onnx", type=Path, help="ONNX file from `omzoo export` (runs in ONNX Runtime)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="this file may run code: fully unpickle it if the safe unpickler refuses it (README Security)")
    p.add_argument("--data", type=Path, required=True,
                   help="folder of images (sorted by file name; JPEG, PNG, GIF, ... every file must be an image), "
                        "ImageFolder tree, or CIFAR-10 python folder")
    p.add_argument("--labels", type=Path, help="val_label.txt for a flat folder (prints top-1/top-5)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out files that cannot be read (listed on stderr) instead of stopping")
    p.add_argument("--out", type=Path, required=True, help="logits .npy to write")
    p.add_argument("--bs", "--batch-size", dest="batch_size", type=batch_size, default=16,
                   help="images per batch (--batch-size is the old spelling)")
    p.add_argument("--workers", type=int, help="decoder processes (default: one per core)")
    p.add_argument("--top", type=positive_int, default=5, help="print the top-k classes of the first images")


def run(args: argparse.Namespace) -> int:
    logits, names, labels, skipped = predict(args.model, args.data, args.labels, args.checkpoint, args.onnx,
                                             args.batch_size, args.workers, args.trust_checkpoint, args.skip_bad)
    save_npy_atomic(args.out, logits.astype(np.float32))
    for s in skipped:
        print(f"skipped {s['name']}: {s['reason']}", file=sys.stderr)
    best = topk(logits, args.top)
    for name, row in list(zip(names, best, strict=True))[:20]:
        print(f"{name}: " + " ".join(str(c) for c in row))
    if len(names) > 20:
        print(f"... ({len(names)} images)")
    if labels is not None:
        acc = topk_accuracy(topk(logits), labels)
        print(f"top-1 {acc['top1']:.2f} %  top-5 {acc['top5']:.2f} %  on {len(names)} images")
    left_out = f", {len(skipped)} skipped (listed above)" if skipped else ""
    print(f"{len(names)} images{left_out}: logits {logits.shape} -> {args.out}")
    return 0
