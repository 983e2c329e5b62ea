"""How one benchmark point is written in a table (the report's and `make bench`'s): the median with its
interval, a contended mark, why a point has no number, and our ratio to a published figure."""

from __future__ import annotations

from typing import Any

from omzoo.core.metrics import fmt

CONTENDED_NOTE = ("† contended: other processes used the CPU during a round that could not be measured again; "
                  "the number is untrustworthy, not slow (see `rounds_contended` in the metrics).")


def ratio(ours: float | None, published: float | None) -> str:
    """ours/published: two decimals, or two significant digits for CPU runs far below an accelerator."""
    if not ours or not published:
        return "–"
    r = ours / published
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def with_interval(metrics: dict[str, Any], name: str = "compute") -> str:
    """`123.4 [120.1, 125.0]`, the median over rounds and its interval; † when a kept round was contended."""
    median = metrics.get(f"throughput_{name}_ips")
    if median is None:
        return "–"
    low, high = metrics.get(f"throughput_{name}_ci_low"), metrics.get(f"throughput_{name}_ci_high")
    text = fmt(median, 1) + (f" [{fmt(low, 1)}, {fmt(high, 1)}]" if low is not None and high is not None else "")
    return text + (" †" if metrics.get("contended") else "")


def failure(metrics: dict[str, Any], info: dict[str, Any]) -> str | None:
    """Why a point has no number: its recorded error (out of memory), or that it was not measured."""
    if info.get("error") or metrics.get("failed"):
        return f"failed: {str(info.get('error', 'out of memory'))[:40]}"
    return None if metrics else "not measured"
