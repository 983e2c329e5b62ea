"""The `infer` stage: run a compiled artefact over a uint8 shard set, in dataset order.

Every image is scored exactly once (omzoo.backends.base.run_shards pads the last batch and trims it); the
logits and the shard set's hash are written for evaluate. predictions.json repeats the top-1 class
(`predicted`) with each image's name and label, so a comparison of two revisions reads one small file per side to
say which images changed their prediction (`omzoo compare`), without the shard set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from omzoo.backends.artefact import load_compiled
from omzoo.backends.base import run_shards
from omzoo.core import paths
from omzoo.core.io import atomic_dir, json_bytes
from omzoo.core.metrics import check_finite, topk
from omzoo.core.provenance import FINGERPRINT
from omzoo.data.shards import ShardSet

HELP = "run a compiled model over preprocessed shards; write the logits and each image's top-1 in dataset order"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True, help="artefact directory from `omzoo compile`")
    p.add_argument("--shards", type=Path, required=True, help="shard directory from `omzoo preprocess`")
    p.add_argument("--out", type=Path, required=True,
                   help=f"directory for logits.npy, infer.json and {paths.PREDICTIONS}")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--toolkit", type=Path, help="the toolkit stage's file (metrics/toolkit.json): must name this "
                   "host's toolkit; its hash goes into infer.json (evaluate's info file repeats it)")


def run(args: argparse.Namespace) -> int:
    backend, meta = load_compiled(args.compiled)
    fingerprint = backend.checked_fingerprint(args.toolkit)
    shards = ShardSet(args.shards)
    if shards.manifest["pixels"] != backend.recipe.pixels:
        raise ValueError(f"{args.shards} holds {shards.manifest['pixels']} pixels but {meta['model']} needs "
                         f"{backend.recipe.pixels} (see `models.<id>.pixels` in params.yaml)")
    try:
        logits, timing = run_shards(backend, shards, meta["batch_size"], progress=not args.quiet)
    finally:
        backend.close()
    check_finite(logits, args.compiled)
    labels = shards.labels
    about = {"model": meta["model"], "backend": meta["backend"], "shards_hash": shards.hash, FINGERPRINT: fingerprint}
    predictions = {**about, "names": shards.names, "labels": None if labels is None else labels.tolist(),
                   "predicted": topk(logits, 1)[:, 0].tolist()}
    with atomic_dir(args.out, "infer") as tmp:  # the three files replace the previous ones together, or not at all
        with open(tmp / "logits.npy", "wb") as f:
            np.save(f, logits, allow_pickle=False)
        (tmp / paths.PREDICTIONS).write_bytes(json.dumps(predictions, separators=(",", ":")).encode())
        (tmp / "infer.json").write_bytes(json_bytes({**timing, **about}))
    print(f"{meta['model']}: {timing['n_images']} images at bs{meta['batch_size']}, "
          f"{timing['throughput_ips']:.1f} img/s -> {args.out}")
    return 0
