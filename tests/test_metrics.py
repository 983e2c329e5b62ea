"""The metric schema and the accuracy / latency arithmetic every stage shares."""

from __future__ import annotations

import numpy as np
import pytest

from omzoo.core import metrics
from omzoo.core.metrics import fidelity, latency_stats, topk, topk_accuracy


def test_topk_breaks_ties_towards_the_lower_class() -> None:
    logits = np.array([[0.0, 2.0, 2.0, 1.0, 1.0, 1.0, -1.0]])
    np.testing.assert_array_equal(topk(logits), [[1, 2, 3, 4, 5]])


def test_topk_accuracy_counts_each_k() -> None:
    top5 = np.array([[3, 1, 2, 0, 4], [0, 1, 2, 3, 4], [9, 8, 7, 6, 5]])
    acc = topk_accuracy(top5, np.array([3, 2, 0]))
    assert acc["top1"] == pytest.approx(100 / 3) and acc["top3"] == pytest.approx(200 / 3)
    assert acc["top5"] == pytest.approx(200 / 3)


def test_fidelity_metrics() -> None:
    ref = np.array([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]])
    ours = ref.copy()
    ours[1, 0] = 9.0  # row 1's top-1 flips to class 0
    f = fidelity(ours, ref)
    assert f["max_abs_diff"] == 9.0 and f["top1_agreement"] == 0.5 and f["top5_overlap"] == pytest.approx(0.9)


def test_latency_stats_use_numpy_percentiles() -> None:
    ms = np.arange(1, 101, dtype=float)
    s = latency_stats(ms)
    assert s["p90"] == np.percentile(ms, 90) and s["p99"] == pytest.approx(99.01) and s["count"] == 100


def test_schema_names_are_unique_and_directions_known() -> None:
    assert len(metrics.BY_NAME) == len(metrics.SCHEMA)
    assert {m.better for m in metrics.SCHEMA} <= {"higher", "lower", ""}
    assert all(m.better for m in metrics.SCHEMA if m.compared)
    assert metrics.get("bench", "e2e_ms.p99").better == "lower"
    assert metrics.get("bench", "throughput_compute_ips").better == "higher"


def test_record_keeps_declared_finite_numbers_only() -> None:
    out = metrics.record("bench", {"bs": 8, "throughput_compute_ips": 12.3456789012, "e2e_ms": {"p99": 1.5}})
    assert out == {"bs": 8, "throughput_compute_ips": 12.345679, "e2e_ms": {"p99": 1.5}}
    with pytest.raises(KeyError, match="'throughput' is not declared"):
        metrics.record("bench", {"throughput": 1.0})
    with pytest.raises(ValueError, match="finite"):
        metrics.record("eval", {"top1": float("nan")})
    with pytest.raises(TypeError, match="must be a number"):
        metrics.record("eval", {"top1": "75"})


def test_flatten_and_nest_are_inverse() -> None:
    nested = {"a": 1, "e2e_ms": {"p50": 2.0, "p99": 3.0}}
    assert metrics.flatten(nested) == {"a": 1, "e2e_ms.p50": 2.0, "e2e_ms.p99": 3.0}
    assert metrics.nest(metrics.flatten(nested)) == nested


GOOD = {"bs": 8, "throughput_compute_ips": 5.0, "throughput_compute_ci_low": 4.0, "throughput_compute_ci_high": 6.0,
        "e2e_ms": {"p99": 3.0}, "future_metric": "kept as it is"}


@pytest.mark.parametrize(("change", "message"), [
    ({"throughput_compute_ips": "fast"}, "throughput_compute_ips is 'fast' \\(str\\), not a finite number"),
    ({"throughput_compute_ips": True}, "throughput_compute_ips is True \\(bool\\)"),
    ({"throughput_compute_ips": None}, "throughput_compute_ips is None"),
    ({"throughput_compute_ips": -5}, "throughput_compute_ips is -5; it cannot be negative"),
    ({"throughput_compute_ips": 1e308, "throughput_compute_ci_high": 1e308},
     "throughput_compute_ips is 1e\\+308, beyond any value"),
    ({"throughput_compute_ips": 12.0}, "throughput_compute_ips 12.0 lies outside its interval \\[4.0, 6.0\\]"),
    ({"bs": 8.5}, "bs is 8.5; it is a whole number"),
    ({"e2e_ms": {"p99": "slow"}}, "e2e_ms.p99 is 'slow'"),
])
def test_a_metrics_file_is_checked_field_by_field(change: dict, message: str) -> None:
    assert metrics.checked("bench", GOOD, "m.json") == GOOD
    assert metrics.checked("eval", {"delta_top1": -1.5, "top1": 90.0}, "e.json")["delta_top1"] == -1.5
    with pytest.raises(ValueError, match=f"^m.json: {message}"):
        metrics.checked("bench", {**GOOD, **change}, "m.json")
