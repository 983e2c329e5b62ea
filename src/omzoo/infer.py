"""The `infer` stage: run a compiled artefact over a uint8 shard set, in dataset order.

The last short batch is padded to the compiled batch size and its padded rows are dropped, so every
image is scored exactly once (never the sMLP guide's truncation). While the backend runs batch k the
next batch is read and fed on a second thread, so the runner does not starve the device.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.base import Backend, pad_batch
from omzoo.compile import load_compiled
from omzoo.data.shards import ShardSet
from omzoo.evaluate import topk
from omzoo.io import save_npy_atomic, write_json_atomic

HELP = "run a compiled model over preprocessed shards; write logits and top-5 indices in dataset order"


def run_shards(backend: Backend, shards: ShardSet, batch_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Logits for every image of `shards` plus timing of the loop (images/s, run-only time)."""
    def prepare(pixels: np.ndarray) -> tuple[np.ndarray, int]:
        padded, n = pad_batch(pixels, batch_size)
        return backend.feed(padded), n

    outputs: list[np.ndarray] = []
    run_s = 0.0
    batches = shards.iter_batches(batch_size)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = next((pool.submit(prepare, b) for b in batches), None)
        while pending is not None:
            x, n = pending.result()
            pending = next((pool.submit(prepare, b) for b in batches), None)
            t = time.perf_counter()
            out = backend.run(x)
            run_s += time.perf_counter() - t
            outputs.append(np.asarray(out, dtype=np.float32)[:n])
    wall_s = time.perf_counter() - start
    logits = np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)
    if logits.shape[0] != len(shards):
        raise RuntimeError(f"{shards.root}: scored {logits.shape[0]} images of {len(shards)}")
    timing = {"n_images": len(shards), "batch_size": batch_size, "wall_s": wall_s, "run_s": run_s,
              "throughput_ips": len(shards) / wall_s if wall_s > 0 else 0.0}
    return logits, timing


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compiled", type=Path, required=True, help="artefact directory from `omzoo compile`")
    p.add_argument("--shards", type=Path, required=True, help="shard directory from `omzoo preprocess`")
    p.add_argument("--out", type=Path, required=True, help="directory for logits.npy, top5.npy, infer.json")


def run(args: argparse.Namespace) -> int:
    backend, meta = load_compiled(args.compiled)
    shards = ShardSet(args.shards)
    if shards.manifest["pixels"] != backend.profile.pixels:
        raise ValueError(f"{args.shards} holds {shards.manifest['pixels']} pixels but {meta['model']} needs "
                         f"{backend.profile.pixels} (see `shards` in params.yaml)")
    try:
        logits, timing = run_shards(backend, shards, meta["batch_size"])
    finally:
        backend.close()
    save_npy_atomic(args.out / "logits.npy", logits)
    save_npy_atomic(args.out / "top5.npy", topk(logits).astype(np.int32))
    write_json_atomic(args.out / "infer.json", {**timing, "model": meta["model"], "backend": meta["backend"],
                                                "shards_hash": shards.hash})
    print(f"{meta['model']}: {timing['n_images']} images at bs{meta['batch_size']}, "
          f"{timing['throughput_ips']:.1f} img/s -> {args.out}")
    return 0
