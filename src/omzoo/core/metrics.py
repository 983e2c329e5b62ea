"""Every number omzoo writes, in one table, and the arithmetic that produces the accuracy ones.

`SCHEMA` names each metric of `metrics/eval/<model>.json` and `metrics/bench/<model>-<bs>.json`: its unit, which
direction is better, how many digits it is written and shown with, and whether a comparison of two revisions
judges it. evaluate and bench write through `record()`, which refuses a key that is not declared here; report,
compare and the tests' fake metrics read the same table, so a renamed or added metric is one edit.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from omzoo.core.errors import shown

Stage = Literal["eval", "bench"]
Better = Literal["higher", "lower", ""]


@dataclass(frozen=True)
class Metric:
    name: str  # key in the metrics file; nested keys are dotted ("e2e_ms.p99"), as `dvc metrics diff` prints them
    stage: Stage
    unit: str  # "%", "img/s", "ms", "s", "" (a count or a 0/1 flag)
    better: Better  # "" = not a quality or speed figure (counts, flags, published references)
    digits: int  # decimals shown in tables (files keep WRITTEN_DECIMALS); 0 = an integer
    compared: bool = False  # judged by `omzoo compare` (accuracy: exact counts; speed: verdicts over rounds)
    doc: str = ""


WRITTEN_DECIMALS = 6
_LATENCY = ("mean", "median", "p50", "p90", "p99", "min", "max", "std")


def _schema() -> tuple[Metric, ...]:
    rows: list[Metric] = [Metric(f"top{k}", "eval", "%", "higher", 2, True, f"top-{k} accuracy") for k in range(1, 6)]
    rows += [
        Metric("n_images", "eval", "", "", 0, doc="images scored (= dataset size - skipped, or the run fails)"),
        Metric("n_skipped", "eval", "", "", 0, doc="images skipped at preprocessing (listed in the manifest)"),
        Metric("random_weights", "eval", "", "", 0, doc="1 when the weights are seeded random: accuracy means nothing"),
        Metric("pass", "eval", "", "", 0, doc="the guides' rule: ours >= 99 % of the published figure"),
    ]
    for k in ("top1", "top5"):
        rows += [Metric(f"published_{k}", "eval", "%", "", 2, doc=f"the guide's {k} on its reference platform"),
                 Metric(f"delta_{k}", "eval", "%", "higher", 2, doc=f"ours - published {k}, in points")]
    rows += [
        Metric("fidelity_max_abs_diff", "eval", "", "lower", 6, doc="max |logit - ORT fp32 logit|, fidelity images"),
        Metric("fidelity_top1_agreement", "eval", "", "higher", 2, doc="share of the fidelity images with ORT's top-1"),
        Metric("fidelity_top5_overlap", "eval", "", "higher", 2, doc="mean top-5 set overlap with ORT fp32"),
    ]
    # a precision other than fp32, against the same backend's fp32 logits on every image of the evaluation set
    rows += [
        Metric("agreement_top1", "eval", "%", "higher", 2, True, "images whose top-1 is fp32's, in percent"),
        Metric("agreement_top5", "eval", "%", "higher", 2, True, "mean overlap of the top-5 sets with fp32's"),
        Metric("agreement_changed", "eval", "", "lower", 0, doc="images whose top-1 differs from fp32's"),
        Metric("agreement_max_abs_dlogit", "eval", "", "lower", 6, doc="max |logit - fp32 logit| over every image"),
        Metric("agreement_mean_abs_dlogit", "eval", "", "lower", 6, doc="mean |logit - fp32 logit|"),
        Metric("agreement_cosine", "eval", "", "higher", 6, doc="mean cosine of an image's logits with fp32's"),
        Metric("agreement_cosine_min", "eval", "", "higher", 6, doc="the lowest cosine of any image"),
        Metric("bs", "bench", "", "", 0, doc="batch size"),
        Metric("iters", "bench", "", "", 0, doc="timed iterations, all kept rounds"),
        Metric("duration_s", "bench", "s", "", 1, doc="timed seconds, all kept rounds"),
        Metric("warmup_iters_done", "bench", "", "", 0, doc="warm-up iterations before the first round"),
        Metric("capped", "bench", "", "", 0, doc="1 when max_s stopped a round before min_iters"),
        Metric("failed", "bench", "", "", 0, doc="1 when the run ran out of memory (the error is in the info file)"),
        Metric("rounds", "bench", "", "", 0, doc="rounds kept: the samples behind every median and interval"),
        Metric("rounds_contended", "bench", "", "", 0, doc="rounds measured while other processes used the CPU"),
        Metric("retries", "bench", "", "", 0, doc="rounds measured again because they were contended"),
        Metric("contended", "bench", "", "", 0, doc="1 when a kept round stayed contended: untrustworthy, not slow"),
        Metric("others_cores_max", "bench", "", "", 2, doc="most CPU (in cores) other processes used in a kept round"),
        Metric("device_busy", "bench", "", "", 0, doc="1 when another process was on the accelerator"),
        Metric("ci_coverage", "bench", "", "", 3, doc="the intervals' confidence (order statistics of the rounds)"),
    ]
    for name, doc in (("compute", "1000*bs/mean(compute_ms): the ais_bench and ModelZoo-T4 formula"),
                      ("e2e", "bs*iters/sum(e2e_ms): host array in, host logits out")):
        rows += [Metric(f"throughput_{name}_ips", "bench", "img/s", "higher", 1, True, f"median over rounds of {doc}"),
                 Metric(f"throughput_{name}_ci_low", "bench", "img/s", "", 1, doc="the median's interval, low end"),
                 Metric(f"throughput_{name}_ci_high", "bench", "img/s", "", 1, doc="the median's interval, high end"),
                 Metric(f"throughput_{name}_cv", "bench", "", "", 3, doc="std/mean over rounds")]
    for series in ("compute_ms", "e2e_ms"):
        rows += [Metric(f"{series}.{s}", "bench", "ms", "lower", 2, series == "e2e_ms" and s in ("p50", "p99"),
                        f"{s} of the per-iteration {series.removesuffix('_ms')} time, kept rounds pooled")
                 for s in _LATENCY]
        rows.append(Metric(f"{series}.count", "bench", "", "", 0, doc=f"iterations behind {series}"))
    return tuple(rows)


SCHEMA: tuple[Metric, ...] = _schema()
BY_NAME: dict[tuple[Stage, str], Metric] = {(m.stage, m.name): m for m in SCHEMA}

#: The speed metrics measured once per round and kept per round in metrics/rounds/<model>-<bs>.json (its
#: "samples"): what a comparison's verdicts are computed from. The bench metrics file holds their medians.
ROUND_METRICS: tuple[str, ...] = tuple(m.name for m in SCHEMA if m.stage == "bench" and m.compared)


#: The metrics other modules act on by name, looked up here so that a rename fails on import instead of silently
#: never matching: a bench that failed (out of memory) or stayed contended cannot be judged, random weights make
#: accuracy meaningless, top-1 (and a precision's top-1 agreement with fp32) is what a comparison gates on, n_images
#: is the count behind every accuracy.
FAILED = BY_NAME[("bench", "failed")].name
CONTENDED = BY_NAME[("bench", "contended")].name
RANDOM_WEIGHTS = BY_NAME[("eval", "random_weights")].name
TOP1 = BY_NAME[("eval", "top1")].name
AGREEMENT_TOP1 = BY_NAME[("eval", "agreement_top1")].name
N_IMAGES = BY_NAME[("eval", "n_images")].name


def of(stage: Stage) -> tuple[Metric, ...]:
    return tuple(m for m in SCHEMA if m.stage == stage)


def get(stage: Stage, name: str) -> Metric:
    try:
        return BY_NAME[(stage, name)]
    except KeyError:
        raise KeyError(f"metric {name!r} is not declared for {stage} in omzoo.core.metrics.SCHEMA") from None


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"e2e_ms": {"p99": 1.0}}` → `{"e2e_ms.p99": 1.0}`: the names SCHEMA and `dvc metrics diff` use."""
    out: dict[str, Any] = {}
    for k, v in nested.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten`: how a metrics file is laid out."""
    out: dict[str, Any] = {}
    for name, v in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def record(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics file's content: declared keys only, finite numbers only, integers as integers."""
    out: dict[str, float | int] = {}
    for name, v in flatten(values).items():
        m = get(stage, name)
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            raise TypeError(f"metric {name!r} must be a number, got {type(v).__name__}")
        if not math.isfinite(float(v)):
            raise ValueError(f"metric {name!r} is {v}: a metrics file holds finite numbers only")
        out[name] = int(v) if m.digits == 0 else round(float(v), WRITTEN_DECIMALS)
    return nest(out)


#: the metrics that may be negative (a difference from the published figure); every other one is a count, a rate, a
#: time, a share or a flag
SIGNED = frozenset({"delta_top1", "delta_top5"})
#: no metric comes near this (img/s, ms, counts); a value beyond it is a broken file, and would overflow a plot's axis
MAX_MAGNITUDE = 1e15


def checked(stage: Stage, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A metrics file (or a row of one) as read for report, compare and plots, checked field by field: each key SCHEMA
    declares a finite number (never a string, a flag or null) within MAX_MAGNITUDE, not negative unless SIGNED, an
    integer where the schema writes one, and each throughput median inside its interval. A bad one is a ValueError
    naming `where` (the file) and the key. Keys SCHEMA does not declare (another revision's older metrics) are left
    alone."""
    flat = flatten(data)
    for name, v in flat.items():
        m = BY_NAME.get((stage, name))
        if m is None:
            continue
        x = number(v)
        quoted = shown(repr(v), 40)
        if x is None:
            raise ValueError(f"{where}: {name} is {quoted} ({type(v).__name__}), not a finite number")
        if x < 0 and name not in SIGNED:
            raise ValueError(f"{where}: {name} is {quoted}; it cannot be negative")
        if abs(x) > MAX_MAGNITUDE:
            raise ValueError(f"{where}: {name} is {quoted}, beyond any value it can take ({MAX_MAGNITUDE:g})")
        if m.digits == 0 and not x.is_integer():
            raise ValueError(f"{where}: {name} is {quoted}; it is a whole number")
    for series in ("compute", "e2e"):
        low, mid, high = (number(flat.get(f"throughput_{series}_{k}")) for k in ("ci_low", "ips", "ci_high"))
        if None not in (low, mid, high) and not low <= mid <= high:  # type: ignore[operator]
            raise ValueError(f"{where}: throughput_{series}_ips {mid} lies outside its interval "
                             f"[{low}, {high}] (throughput_{series}_ci_low, _ci_high)")
    return dict(data)


def number(v: Any) -> float | None:
    """A metric value as a float, or None for what is not a finite number (missing, a string, NaN, a flag)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


def fmt(v: Any, digits: int = 2) -> str:
    """A table cell: floats to `digits` decimals, "–" for a missing value."""
    if v is None or v == "":
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------------------------- accuracy


def check_finite(logits: np.ndarray, model: str | os.PathLike[str]) -> None:
    """NaN or inf logits rank as nonsense, silently; fail naming the model file (infer, predict) instead."""
    bad = ~np.isfinite(logits.reshape(len(logits), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{model}: the model gave non-finite logits (NaN or inf) for {int(bad.sum())} of "
                         f"{len(logits)} images; check the weights it was made from")


def topk(logits: np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the k largest logits per row, best first; exact ties go to the lower class index."""
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def topk_accuracy(top5: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """top1..top5 in percent from best-first index rows."""
    hits = top5 == labels[:, None]
    return {f"top{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in range(1, 6)}


def topk_agreement(ours: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """From best-first index rows of the same images: the share whose top-1 is the reference's ("top1") and the mean
    overlap of the top-5 sets ("top5"), both 0..1."""
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(ours, reference, strict=True)]
    return {"top1": float((ours[:, 0] == reference[:, 0]).mean()), "top5": float(np.mean(overlap))}


def agreement(logits: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How far logits are from reference logits of the same images, per image and overall: the agreement_* metrics
    (top-1 and top-5 as shares, 0..1) and `changed`, the indices whose top-1 differs."""
    if logits.shape != reference.shape or not len(logits):
        raise ValueError(f"logits of shape {list(logits.shape)} cannot be compared with {list(reference.shape)}")
    ours, ref = topk(logits), topk(reference)
    a, b = logits.reshape(len(logits), -1).astype(np.float64), reference.reshape(len(logits), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1), (a == b).all(axis=1) * 1.0)
    diff = np.abs(a - b)
    return {**topk_agreement(ours, ref),
            "max_abs_dlogit": float(diff.max()), "mean_abs_dlogit": float(diff.mean()),
            "cosine": float(cosine.mean()), "cosine_min": float(cosine.min()),
            "changed": np.flatnonzero(ours[:, 0] != ref[:, 0]).tolist()}


def fidelity(logits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How far a compiled model's logits are from the fp32 reference on the same inputs."""
    a = agreement(logits, reference)
    return {"max_abs_diff": a["max_abs_dlogit"], "top1_agreement": a["top1"], "top5_overlap": a["top5"]}


def latency_stats(ms: np.ndarray) -> dict[str, float]:
    """docs/benchmarking.md R4: numpy's default (linear) percentiles of the raw per-iteration times."""
    return {"mean": float(ms.mean()), "median": float(np.median(ms)), "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99)), "min": float(ms.min()),
            "max": float(ms.max()), "std": float(ms.std()), "count": int(ms.size)}
