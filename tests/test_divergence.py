"""The per-node comparison maths of `omzoo diagnose`: cosine, relative Euclidean distance, max |Δ|, the first node
past msit compare's thresholds and whether the error propagates or stays local."""

from __future__ import annotations

import numpy as np
import pytest

from omzoo.results.divergence import compare, markdown, node_divergence, sqnr_db, verdict

A = np.arange(1, 13, dtype=np.float32).reshape(3, 4)


def test_compare_identical_scaled_and_zero() -> None:
    assert compare(A, A) == (pytest.approx(1.0), 0.0, 0.0)
    cosine, red, max_abs = compare(A, 1.1 * A)
    assert cosine == pytest.approx(1.0) and red == pytest.approx(0.1) and max_abs == pytest.approx(1.2)
    assert compare(np.zeros(4), np.zeros(4)) == (1.0, 0.0, 0.0)
    assert compare(np.zeros(4), np.ones(4))[0] == 0.0
    assert compare(A, -A)[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="12 and 4 values"):
        compare(A, np.ones(4))


def test_sqnr_is_qdq_loss_debugs() -> None:
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    b = A + np.float32(0.25)
    assert sqnr_db(A, b) == pytest.approx(compute_signal_to_quantization_noice_ratio(A, b), rel=1e-5)


def rows(reds: list[float]) -> list:
    return [node_divergence(f"n{i}", "Conv", f"t{i}", A, A * (1 + r)) for i, r in enumerate(reds)]


@pytest.mark.parametrize(("reds", "first", "effect"), [
    ([0.0, 0.01, 0.02], None, None),
    ([0.0, 0.1, 0.2, 0.3], "n1", "propagates"),
    ([0.0, 0.1, 0.01, 0.01], "n1", "local"),
    ([0.0, 0.01, 0.2], "n2", "propagates"),  # at the output itself
])
def test_verdict(reds: list[float], first: str | None, effect: str | None) -> None:
    summary = verdict(rows(reds))
    assert (summary["first"] or {}).get("node") == first and summary["effect"] == effect
    assert summary["diverged"] is (first is not None)
    text = markdown(rows(reds), summary, "t", ["about"])
    assert (f"First divergence: `{first}`" in text) if first else ("No divergence" in text)
    assert text.count("\n| ") == len(reds) + 1  # the header and one row per node
