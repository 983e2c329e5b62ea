"""The `evaluate` stage: top-1..5 against the labels, the published figure, and fidelity to ORT fp32.

The denominator is the dataset size minus the images explicitly skipped at preprocessing; a run that
scored fewer images than that is an error, never a smaller denominator (the guides' trap).
Pass/fail follows the guides' rule: our accuracy is at least 99 % of the published one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from omzoo import zoo
from omzoo.data.shards import ShardSet
from omzoo.io import write_json_atomic
from omzoo.provenance import git_revision

HELP = "score inferred logits: top-1..5, delta to the published accuracy, fidelity to ONNX Runtime fp32"

PASS_RATIO = 0.99  # the Ascend guides' acceptance: accuracy drop within 1 % of the published figure


def topk(logits: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the k largest logits per row, best first; exact ties go to the lower class index."""
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def topk_accuracy(top5: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top1..top5 in percent from best-first index rows."""
    hits = top5 == labels[:, None]
    return {f"top{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in range(1, 6)}


def fidelity(logits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How far a compiled model's logits are from the fp32 reference on the same inputs."""
    ours, ref = topk(logits), topk(reference)
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(ours, ref, strict=True)]
    return {"max_abs_diff": float(np.abs(logits - reference).max()),
            "top1_agreement": float((ours[:, 0] == ref[:, 0]).mean()),
            "top5_overlap": float(np.mean(overlap))}


def reference_logits(model_id: str, onnx_path: Path, shards: ShardSet, n: int) -> tuple[np.ndarray, int]:
    """ONNX Runtime CPU fp32 logits of the exported graph on the first `n` images."""
    from omzoo.export import ort_logits

    pixels = next(shards.iter_batches(n))
    import onnx

    graph_input = onnx.load(str(onnx_path), load_external_data=False).graph.input[0]
    if graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8:
        x = np.ascontiguousarray(pixels)
    else:
        from omzoo.data.profiles import get_profile, normalize

        profile = get_profile(zoo.get(model_id).profile)  # the shards hold pixels only; the model says how to scale
        x = normalize(pixels, profile)
    return ort_logits(onnx_path, x), len(pixels)


def evaluate(model_id: str, logits: np.ndarray, shards: ShardSet, weights: dict[str, Any],
             reference: tuple[np.ndarray, int] | None) -> dict[str, float]:
    spec = zoo.get(model_id)
    if shards.labels is None:
        raise ValueError(f"{shards.manifest.get('source')}: the dataset has no labels; nothing to evaluate")
    expected = shards.manifest["dataset_size"] - shards.manifest["n_skipped"]
    if logits.shape[0] != expected or len(shards) != expected:
        raise ValueError(f"scored {logits.shape[0]} images but the dataset has {shards.manifest['dataset_size']} "
                         f"of which {shards.manifest['n_skipped']} were skipped")
    metrics: dict[str, float] = {**topk_accuracy(topk(logits), shards.labels), "n_images": int(logits.shape[0]),
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
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in metrics.items()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--infer", type=Path, required=True, help="directory from `omzoo infer`")
    p.add_argument("--shards", type=Path, required=True, help="the shard directory that was inferred")
    p.add_argument("--weights", type=Path, required=True, help="provenance JSON from `omzoo weights`")
    p.add_argument("--reference", type=Path, help="exported ONNX to compare the first batch against (ORT fp32)")
    p.add_argument("--fidelity-images", type=int, default=8, help="images in the fidelity check")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="provenance JSON (strings)")


def run(args: argparse.Namespace) -> int:
    shards = ShardSet(args.shards)
    logits = np.load(args.infer / "logits.npy")
    weights = json.loads(args.weights.read_text())
    reference = reference_logits(args.model, args.reference, shards, args.fidelity_images) if args.reference else None
    metrics = evaluate(args.model, logits, shards, weights, reference)
    write_json_atomic(args.out, metrics)
    infer_info = json.loads((args.infer / "infer.json").read_text())
    platform = zoo.get(args.model).reference_platform
    write_json_atomic(args.info, {"model": args.model, "backend": infer_info["backend"],
                                  "weights": weights.get("weights"), "checkpoint_sha256": weights.get("sha256"),
                                  "weights_source": weights.get("source") or f"random, seed {weights.get('seed')}",
                                  "git_revision": git_revision(),
                                  "dataset": str(shards.manifest.get("source")), "dataset_manifest": shards.hash,
                                  "profile": shards.manifest.get("profile"),
                                  "pass_rule": f"ours >= {PASS_RATIO} x published ({platform})",
                                  "ranking": "argsort(-logits), stable: ties go to the lower class index",
                                  "skipped": shards.manifest.get("skipped", [])})
    note = " (random weights: accuracy means nothing)" if metrics["random_weights"] else ""
    print(f"{args.model}: top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f} on {metrics['n_images']} images{note}")
    return 0
