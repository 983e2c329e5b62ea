"""core/onnxgraph.py: the graph input a backend is fed, and the seeded input that simplify and bench feed it."""

from __future__ import annotations

import numpy as np

from omzoo.core.onnxgraph import random_input


def test_random_input_is_seeded_and_never_zero() -> None:
    a = random_input((2, 3, 4, 4), np.dtype(np.uint8), 0)
    assert a.dtype == np.uint8 and a.any()
    np.testing.assert_array_equal(a, random_input((2, 3, 4, 4), np.dtype(np.uint8), 0))
    assert random_input((2, 3), np.dtype(np.float32), 1).dtype == np.float32
