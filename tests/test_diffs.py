"""What `dvc metrics diff` and `dvc params diff` report, checked and sorted (omzoo.results.diffs)."""

from __future__ import annotations

import pytest

from omzoo.results import diffs
from omzoo.results.diffs import Row, metrics_diff, parse_metrics_diff, parse_params_diff


def test_parse_metrics_diff_sorts_and_keeps_only_numbers() -> None:
    diff = {
        "metrics/bench/m_b-16.json": {"throughput_compute_ips": {"old": 10, "new": 12, "diff": 2}},
        "metrics/bench/m_b-2.json": {"throughput_compute_ips": {"old": "error", "new": 5.0},
                                     "e2e_ms.p99": {"old": float("nan"), "new": 1.0}, "bs": {"old": 2, "new": 2}},
        "metrics/eval/m_a.json": {"top5": {"old": 90.0, "new": 90.0, "diff": 0.0},
                                  "top1": {"old": 70.0, "new": 71.4, "diff": 1.4}, "random_weights": {"old": 1}},
        "metrics/other/x.json": {"top1": {"old": 1, "new": 2}},
    }
    rows, random = parse_metrics_diff(diff)
    assert [(r.model, r.bs, r.metric) for r in rows] == [
        ("m_a", None, "top1"), ("m_a", None, "top5"),
        ("m_b", 2, "throughput_compute_ips"), ("m_b", 2, "e2e_ms.p99"), ("m_b", 16, "throughput_compute_ips")]
    assert random == {"m_a"}
    assert rows[2].old is None and rows[2].delta is None and rows[3].old is None  # "error" and NaN: no delta
    assert rows[0].delta == pytest.approx(1.4) and rows[4].pct == pytest.approx(20.0)
    assert Row("m", "accuracy", None, "top1", 0.0, 1.0).pct is None  # no division by zero


def test_a_revision_without_numbers_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC exits 0 when it cannot load a revision's metrics: the content says so."""
    out = {"metrics/eval/m.json": {"top1": {"new": 70.0}}}
    monkeypatch.setattr(diffs, "dvc_json", lambda args: (out, "WARNING: failed to load metrics at 'old'\n"))
    rows, _, warnings = metrics_diff("old", "new")
    assert [(r.metric, r.old, r.new) for r in rows] == [("top1", None, 70.0)]
    assert warnings == ["WARNING: failed to load metrics at 'old'",
                        "no omzoo metrics at 'old' (nothing under metrics/eval or metrics/bench committed?)"]


def test_params_diff_shows_changed_keys_sorted_with_structures_as_json() -> None:
    diff = {"params.yaml": {"toolkit.version": {"old": "8.0", "new": "8.1"}, "batch_sizes": {"old": [1], "new": None},
                            "acl": {"old": None, "new": {"aipp": True}}},
            "extra.yaml": {"x": {"old": 1, "new": 2}}}
    assert parse_params_diff(diff) == [
        {"file": "extra.yaml", "param": "x", "old": "1", "new": "2"},
        {"file": "params.yaml", "param": "acl", "old": "–", "new": '{"aipp": true}'},
        {"file": "params.yaml", "param": "batch_sizes", "old": "[1]", "new": "–"},
        {"file": "params.yaml", "param": "toolkit.version", "old": "8.0", "new": "8.1"}]
