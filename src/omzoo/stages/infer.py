"""The `infer` stage: run a model's compiled artefacts, one per precision, over a uint8 shard set, in dataset order.

Every image is scored exactly once (omzoo.backends.base.run_shards pads the last batch and trims it); the
logits and the shard set's hash are written for evaluate, one sub-folder per precision (evaluate measures each
against fp32's on every image). predictions.json repeats the top-1 class
(`predicted`) with each image's name and label, so a comparison of two revisions reads one small file per side to
say which images changed their prediction (`omzoo compare`), without the shard set.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from omzoo.backends.artefact import META, load_compiled
from omzoo.backends.base import run_shards
from omzoo.core import paths
from omzoo.core.io import atomic_dir, json_bytes
from omzoo.core.metrics import check_finite, topk
from omzoo.core.params import Params, load_params
from omzoo.core.provenance import FINGERPRINT
from omzoo.data.shards import ShardSet

HELP = "run a compiled model over preprocessed shards; write the logits and each image's top-1 in dataset order"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True,
                   help="a model's compiled folder (models/compiled/<model>: the artefacts of `precisions:` at "
                   "infer.batch_size), or one artefact directory from `omzoo compile`")
    p.add_argument("--shards", type=Path, required=True, help="shard directory from `omzoo preprocess`")
    p.add_argument("--out", type=Path, required=True,
                   help=f"folder with one sub-folder per precision: logits.npy, infer.json and {paths.PREDICTIONS}")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--toolkit", type=Path, help="the toolkit stage's file (metrics/toolkit.json): must name this "
                   "host's toolkit; its hash goes into infer.json (evaluate's info file repeats it)")


def artefacts(compiled: Path, params: Params) -> list[Path]:
    """The artefact directories to run: `compiled` itself when it is one, else its model's artefact of each of
    `precisions:` at infer.batch_size (each must exist: a missing one is an error, never a skipped precision)."""
    if (compiled / META).is_file():
        return [compiled]
    sizes = params.batch_sizes or [1]
    bs = params.section("infer").get("batch_size", sizes[0])
    dirs = [compiled / paths.key(compiled.name, bs, p) for p in params.precisions]
    missing = [str(d) for d in dirs if not (d / META).is_file()]
    if missing:
        raise FileNotFoundError(f"{compiled}: no compiled artefact {', '.join(missing)} (precisions "
                                f"{params.precisions} at infer.batch_size {bs}); run `omzoo compile` for it")
    return dirs


def infer_one(art_dir: Path, shards_dir: Path, toolkit: Path | None, progress: bool) -> tuple[str, dict[str, bytes]]:
    """One artefact over the shards: its precision and the three files of its sub-folder. The artefact is loaded
    first: a backend that must run in another environment (acl) restarts the command there before anything else."""
    backend, meta = load_compiled(art_dir)
    try:
        shards = ShardSet(shards_dir)
        fingerprint = backend.checked_fingerprint(toolkit)
        if shards.manifest["pixels"] != backend.recipe.pixels:
            raise ValueError(f"{shards.root} holds {shards.manifest['pixels']} pixels but {meta['model']} needs "
                             f"{backend.recipe.pixels} (see `models.<id>.pixels` in params.yaml)")
        logits, timing = run_shards(backend, shards, meta["batch_size"], progress=progress)
    finally:
        backend.close()
    check_finite(logits, art_dir)
    labels = shards.labels
    precision = backend.precision
    about = {"model": meta["model"], "backend": meta["backend"], "precision": precision,
             "precision_record": meta.get("precision_record", {"precision": precision}), "shards_hash": shards.hash,
             FINGERPRINT: fingerprint}
    predictions = {**about, "names": shards.names, "labels": None if labels is None else labels.tolist(),
                   "predicted": topk(logits, 1)[:, 0].tolist()}
    buf = io.BytesIO()
    np.save(buf, logits, allow_pickle=False)
    print(f"{meta['model']} {precision}: {timing['n_images']} images at bs{meta['batch_size']}, "
          f"{timing['throughput_ips']:.1f} img/s")
    return precision, {"logits.npy": buf.getvalue(),
                       paths.PREDICTIONS: json.dumps(predictions, separators=(",", ":")).encode(),
                       "infer.json": json_bytes({**timing, **about})}


def run(args: argparse.Namespace) -> int:
    results = dict(infer_one(d, args.shards, args.toolkit, not args.quiet)
                   for d in artefacts(args.compiled, load_params(args.params)))
    with atomic_dir(args.out, "infer") as tmp:  # every precision's files replace the previous ones together
        for precision, files in results.items():
            (tmp / precision).mkdir()
            for name, data in files.items():
                (tmp / precision / name).write_bytes(data)
    print(f"{', '.join(results)} -> {args.out}")
    return 0
