"""The `evaluate` stage: per precision, top-1..5 against the labels, the published figure, fidelity to ORT fp32, and
for every precision but fp32 its agreement with the same backend's fp32 on every image (the images whose top-1
changed are named in the info file).

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
from omzoo.core.io import check_replaceable, claim_folder, json_bytes, read_json, write_files_atomic
from omzoo.core.metrics import agreement, fidelity, record, topk, topk_accuracy
from omzoo.core.onnxgraph import reference_logits
from omzoo.core.params import REFERENCE, positive_int
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
    p.add_argument("--infer", type=Path, required=True, help="folder from `omzoo infer` (one sub-folder per precision)")
    p.add_argument("--shards", type=Path, required=True, help="the shard directory that was inferred")
    p.add_argument("--weights", type=Path, required=True, help="provenance JSON from `omzoo weights`")
    p.add_argument("--reference", type=Path, help="exported ONNX, run by ORT fp32 on the fidelity images")
    p.add_argument("--fidelity-images", type=positive_int, default=8, help="images in the fidelity check")
    p.add_argument("--out", type=Path, required=True, help="folder for one metrics JSON per precision (numbers only)")
    p.add_argument("--info", type=Path, required=True, help="folder for one provenance JSON per precision (strings)")


def inferred(folder: Path, model: str, shards: ShardSet) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
    """Each precision's logits and infer.json in `folder`, fp32 first; an output of another model or other shards
    is an error naming the file."""
    found = sorted((d for d in folder.iterdir() if (d / "infer.json").is_file()) if folder.is_dir() else [],
                   key=lambda d: (d.name != REFERENCE, d.name))
    if not found:
        raise FileNotFoundError(f"{folder}: no inferred precision (no <precision>/infer.json); run `omzoo infer`")
    out = {}
    for d in found:
        info = read_json(d / "infer.json")
        if info.get("model") != model:
            raise ValueError(f"{d}: holds the outputs of {info.get('model')!r}, not {model!r}")
        if info.get("shards_hash") != shards.hash:
            raise ValueError(f"{d}: was inferred on other shards than {shards.root} (manifest hash differs); "
                             "run infer again")
        if info.get("precision", d.name) != d.name:
            raise ValueError(f"{d}: infer.json says precision {info.get('precision')!r}, not {d.name!r}")
        out[d.name] = (np.load(d / "logits.npy", allow_pickle=False), info)
    return out


def run(args: argparse.Namespace) -> int:
    shards = ShardSet(args.shards)
    runs = inferred(args.infer, args.model, shards)
    weights = read_json(args.weights)
    reference = None
    if args.reference:
        pixels = next(shards.iter_batches(args.fidelity_images))
        reference = (reference_logits(args.reference, pixels, zoo.get(args.model).recipe), len(pixels))
    metrics_files: dict[str, bytes] = {}
    info_files: dict[str, bytes] = {}
    fp32 = runs.get(REFERENCE)
    if fp32 is None and len(runs) > 1:
        raise FileNotFoundError(f"{args.infer}: no {REFERENCE} sub-folder, which the other precisions are measured "
                                "against")
    # Folders of omzoo's own, as every folder output (README "Security"): new, empty or marked, never a user's folder
    # written into (DVC ignores the marker there: .dvcignore); checked now, made only once every number is known,
    # so a failed evaluate leaves nothing behind. A precision no longer configured leaves its old file, which
    # nothing reads (the report reads `precisions:`).
    check_replaceable(args.out)
    check_replaceable(args.info)
    for precision, (logits, infer_info) in runs.items():
        metrics = evaluate(args.model, logits, shards, weights, reference)
        info = {**provenance(args.model, infer_info["backend"], weights, shards), "precision": precision,
                **{f"precision_{k}": v for k, v in infer_info.get("precision_record", {}).items() if k != "precision"}}
        if precision != REFERENCE and fp32 is not None:
            same = agreement(logits, fp32[0])
            changed = same.pop("changed")
            metrics.update(record("eval", {f"agreement_{k}": 100 * v if k in ("top1", "top5") else v
                                           for k, v in {**same, "changed": len(changed)}.items()}))
            info["agreement_with"] = f"{REFERENCE} logits of the same backend, every image"
            info["agreement_changed_images"] = [shards.names[i] for i in changed]
        if FINGERPRINT in infer_info:  # the toolkit the logits were computed under (infer checked it)
            info[FINGERPRINT] = infer_info[FINGERPRINT]
        metrics_files[f"{precision}.json"] = json_bytes(metrics)
        info_files[f"{precision}.json"] = json_bytes(info)
        note = " (random weights: accuracy means nothing)" if metrics["random_weights"] else ""
        agree = f", agrees with fp32 on {metrics['agreement_top1']:.2f} %" if "agreement_top1" in metrics else ""
        print(f"{args.model} {precision}: top1 {metrics['top1']:.2f} top5 {metrics['top5']:.2f} on "
              f"{metrics['n_images']} images{agree}{note}")
    out, info_dir = claim_folder(args.out, "eval"), claim_folder(args.info, "eval-info")
    write_files_atomic({**{out / name: data for name, data in metrics_files.items()},  # every precision's pair
                        **{info_dir / name: data for name, data in info_files.items()}})  # together
    return 0
