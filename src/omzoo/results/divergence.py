"""Where a lower-precision graph departs from the fp32 one: per-node agreement, the first node past the thresholds,
and whether its error carries on to the output or fades again.

Thresholds are msit compare's (Ascend's accuracy comparison tool): cosine similarity above 0.99 and relative
Euclidean distance ||a - b|| / ||a|| below 0.05, with `a` the reference tensor. Pure numpy: the tensors come from
the backend (omzoo.backends.onnxruntime.debug), the report from omzoo.stages.diagnose.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

COSINE_MIN = 0.99
RED_MAX = 0.05
_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class NodeDivergence:
    """One node output of the reference graph against the same tensor of the other graph."""

    node: str
    op: str
    tensor: str
    cosine: float
    red: float  # relative Euclidean distance ||a - b|| / ||a||
    max_abs: float
    sqnr_db: float  # 20 log10(||a|| / ||a - b||), qdq_loss_debug's measure (capped at float32 eps)
    qdq: bool = False  # the other tensor is the output of this tensor's own QuantizeLinear/DequantizeLinear
    #: this tensor's own QDQ alone (pre vs post, qdq_loss_debug's qdq_err); where the quantizer folded a Relu into the
    #: quantization range, the tensor before the QDQ is the one before that Relu, and this counts the Relu too
    qdq_sqnr_db: float | None = None

    @property
    def diverged(self) -> bool:
        return not (self.cosine > COSINE_MIN and self.red < RED_MAX)


def sqnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """onnxruntime.quantization.qdq_loss_debug.compute_signal_to_quantization_noice_ratio's formula."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return 20 * math.log10(max(float(np.linalg.norm(a)), _EPS) / max(float(np.linalg.norm(a - b)), _EPS))


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(cosine similarity, relative Euclidean distance, max |a - b|) of reference `a` and `b`, flattened, in float64.

    Two all-zero tensors agree (cosine 1, distance 0); a zero tensor against a non-zero one has cosine 0 and the
    distance relative to float32 eps. Shapes must hold the same number of values."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"cannot compare tensors of {a.size} and {b.size} values")
    if a.size == 0:
        return 1.0, 0.0, 0.0
    na, nb, nd = float(np.linalg.norm(a)), float(np.linalg.norm(b)), float(np.linalg.norm(a - b))
    if na == 0.0 and nb == 0.0:
        cosine = 1.0
    elif na == 0.0 or nb == 0.0:
        cosine = 0.0
    else:
        cosine = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return cosine, nd / max(na, _EPS), float(np.abs(a - b).max())


def node_divergence(node: str, op: str, tensor: str, a: np.ndarray, b: np.ndarray, qdq: bool = False,
                    pre_qdq: np.ndarray | None = None) -> NodeDivergence:
    cosine, red, max_abs = compare(a, b)
    return NodeDivergence(node, op, tensor, cosine, red, max_abs, sqnr_db(a, b), qdq,
                          None if pre_qdq is None else sqnr_db(pre_qdq, b))


def verdict(rows: list[NodeDivergence]) -> dict[str, Any]:
    """The first node past either threshold and what happens after it, over `rows` in topological order.

    "propagates": the error reaches the output (the last node is still past a threshold, or the first diverging node
    is the last); "local": the later nodes come back under both thresholds by the output. None where nothing
    diverges. `diverged_after` counts the later nodes past a threshold, `output_red` is the last node's distance."""
    first = next((i for i, r in enumerate(rows) if r.diverged), None)
    if first is None:
        return {"diverged": False, "first": None, "effect": None, "diverged_nodes": 0, "after": 0,
                "diverged_after": 0, "output_red": rows[-1].red if rows else 0.0}
    later = rows[first + 1:]
    diverged_after = sum(r.diverged for r in later)
    effect = "propagates" if not later or later[-1].diverged else "local"
    return {"diverged": True, "first": asdict(rows[first]), "effect": effect,
            "diverged_nodes": sum(r.diverged for r in rows), "after": len(later), "diverged_after": diverged_after,
            "output_red": rows[-1].red}


def markdown(rows: list[NodeDivergence], summary: dict[str, Any], title: str, about: list[str]) -> str:
    """diagnose.md: the verdict, then one table row per node (the first diverging one marked)."""
    lines = [f"# {title}", "", *[f"- {line}" for line in about], ""]
    if summary["diverged"]:
        f = summary["first"]
        lines.append(f"**First divergence: `{f['node']}` ({f['op']}), tensor `{f['tensor']}`**: cosine "
                     f"{f['cosine']:.4f}, RED {f['red']:.4f}, max |Δ| {f['max_abs']:.4g}. The error "
                     f"**{summary['effect']}**: {summary['diverged_after']} of the {summary['after']} later nodes "
                     f"past the thresholds, output RED {summary['output_red']:.4f}.")
    else:
        lines.append(f"**No divergence**: every node within cosine > {COSINE_MIN} and RED < {RED_MAX}.")
    lines += ["", f"Thresholds (msit compare): cosine > {COSINE_MIN}, RED = ‖a−b‖/‖a‖ < {RED_MAX}. SQNR: "
              "20 log10(‖a‖/‖a−b‖); own QDQ SQNR: the tensor before against after its own QuantizeLinear/"
              "DequantizeLinear (where the quantizer folded a Relu into the range, that Relu counts too).", "",
              "| # | node | op | cosine | RED | max \\|Δ\\| | SQNR dB | own QDQ SQNR dB | |",
              "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    first = summary["first"]["tensor"] if summary["diverged"] else None
    for i, r in enumerate(rows):
        mark = "first" if r.tensor == first else ("past" if r.diverged else "")
        own = "" if r.qdq_sqnr_db is None else f"{r.qdq_sqnr_db:.1f}"
        lines.append(f"| {i} | `{r.node}` | {r.op} | {r.cosine:.5f} | {r.red:.5f} | {r.max_abs:.4g} | "
                     f"{r.sqnr_db:.1f} | {own} | {mark} |")
    return "\n".join(lines) + "\n"
