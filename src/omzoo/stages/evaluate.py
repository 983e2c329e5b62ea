"""The `evaluate` stage: top-1..5 against the labels, the published figure, and fidelity to ORT fp32.

The denominator is the dataset size minus the images explicitly skipped at preprocessing; a run that
scored fewer images than that is an error, never a smaller denominator (the guides' trap).
Pass/fail follows the guides' rule: our accuracy is at least 99 % of the published one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core import zoo
from omzoo.core.io import json_bytes, read_json, write_files_atomic
from omzoo.core.metrics import fidelity, record, topk, topk_accuracy
from omzoo.core.onnxgraph import reference_logits
from omzoo.core.params import positive_int
from omzoo.core.provenance import FINGERPRINT, git_revision
from omzoo.data.shards import ShardSet

HELP = "score inferred logits: top-1..5, delta to the published accuracy, fidelity to ONNX Runtime fp32"

PASS_RATIO = 0.99  # the Ascend guides' acceptance: accuracy drop within 1 % of the published figure


def evaluate(model_id: str, logits: np.ndarray, shards: ShardSet, weights: dict[str, Any],
             reference: tuple[np.ndarray, int] | None) -> dict[str, Any]:
    """The numbers-only eval metrics; `reference` is ORT fp32 logits of the first images and their count."""
    spec = zoo.get(model_id)
    if shards.labels is None:
        raise ValueError(f"{shards.manifest.get('source')}: the dataset has no labels; nothing to evaluate")
    bad = np.flatnonzero((shards.labels < 0) | (shards.labels >= spec.num_classes))
    if bad.size:
        names = ", ".join(f"{shards.names[i]} ({int(shards.labels[i])})" for i in bad[:5])
        raise ValueError(f"{shards.manifest.get('source')}: {bad.size} label(s) outside the {spec.num_classes} classes "
                         f"of {model_id} (0..{spec.num_classes - 1}): {names}")
    expected = shards.manifest["dataset_size"] - shards.manifest["n_skipped"]
    if logits.shape[0] != expected or len(shards) != expected:
        raise ValueError(f"scored {logits.shape[0]} images but the dataset has {shards.manifest['dataset_size']} "
                         f"of which {shards.manifest['n_skipped']} were skipped")
    metrics: dict[str, Any] = {**topk_accuracy(topk(logits), shards.labels), "n_images": int(logits.shape[0]),
                                 "n_skipped": int(shards.manifest["n_skipped"]),
                                 "random_weights": int(weights.get("weights") == "random")}
    published = spec.published_accuracy.get(spec.reference_platform, {})
    for key, value in published.items():
        metrics[f"published_{key}"] = value
        metrics[f"delta_{key}"] = metrics[key] - value
    if published and not metrics["random_weights"]:
        metrics["pass"] = int(all(metrics[k] >= PASS_RATIO * v for k, v in published.items()))
    if reference is not None:
        ref, n = reference
        metrics.update({f"fidelity_{k}": v for k, v in fidelity(logits[:n], ref).items()})
    return record("eval", metrics)


def provenance(model_id: str, backend: str, weights: dict[str, Any], shards: ShardSet) -> dict[str, Any]:
    """The info file's strings: where the weights and the data came from, and the rules the numbers follow."""
    platform = zoo.get(model_id).reference_platform
    return {"model": model_id, "backend": backend,
            "weights": weights.get("weights"), "checkpoint_sha256": weights.get("sha256"),
            "weights_source": weights.get("source") or f"random, seed {weights.get('seed')}",
            "git_revision": git_revision(),
            "dataset": str(shards.manifest.get("source")), "dataset_manifest": shards.hash,
            "pixels": shards.manifest.get("pixels"),
            "pass_rule": f"ours >= {PASS_RATIO} x published ({platform})",
            "ranking": "argsort(-logits), stable: ties go to the lower class index",
            "skipped": shards.manifest.get("skipped", [])}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--infer", type=Path, required=True, help="directory from `omzoo infer`")
    p.add_argument("--shards", type=Path, required=True, help="the shard directory that was inferred")
    p.add_argument("--weights", type=Path, required=True, help="provenance JSON from `omzoo weights`")
    p.add_argument("--reference", type=Path, help="exported ONNX, run by ORT fp32 on the fidelity images")
    p.add_argument("--fidelity-images", type=positive_int, default=8, help="images in the fidelity check")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="provenance JSON (strings)")


def run(args: argparse.Namespace) -> int:
    shards = ShardSet(args.shards)
    infer_info = read_json(args.infer / "infer.json")
    if infer_info.get("model") != args.model:
        raise ValueError(f"{args.infer}: holds the outputs of {infer_info.get('model')!r}, not {args.model!r}")
    if infer_info.get("shards_hash") != shards.hash:
        raise ValueError(f"{args.infer}: was inferred on other shards than {args.shards} (manifest hash differs); "
                         "run infer again")
    logits = np.load(args.infer / "logits.npy")
    weights = read_json(args.weights)
    reference = None
    if args.reference:
        pixels = next(shards.iter_batches(args.fidelity_images))
        reference = (reference_logits(args.reference, pixels, zoo.get(args.model).recipe), len(pixels))
    metrics = evaluate(args.model, logits, shards, weights, reference)
    info = provenance(args.model, infer_info["backend"], weights, shards)
    if FINGERPRINT in infer_info:  # the toolkit the logits were computed under (infer checked it)
        info[FINGERPRINT] = infer_info[FINGERPRINT]
    write_files_atomic({args.out: json_bytes(metrics), args.info: json_bytes(info)})
    note = " (random weights: accuracy means nothing)" if metrics["random_weights"] else ""
    print(f"{args.model}: top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f} on {metrics['n_images']} images{note}")
    return 0
