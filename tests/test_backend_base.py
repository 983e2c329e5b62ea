"""The backend interface: the registry, batch padding, and the fixed describe() keys of every backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omzoo.backends.artefact import load_compiled
from omzoo.backends.base import DESCRIBE_KEYS, get_backend, pad_batch


def test_pad_batch_repeats_the_last_row_and_reports_the_real_count() -> None:
    x = np.arange(3 * 2).reshape(3, 2)
    padded, n = pad_batch(x, 5)
    assert n == 3 and padded.shape == (5, 2)
    np.testing.assert_array_equal(padded[3:], np.repeat(x[-1:], 2, axis=0))
    assert pad_batch(x, 3)[0] is x
    with pytest.raises(ValueError, match="larger than the batch size"):
        pad_batch(x, 2)


def test_unknown_backend_is_clear() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'.*onnxruntime"):
        get_backend("tensorrt")


@pytest.mark.parametrize("options", [{}, {"threads": 1}])
def test_describe_has_the_fixed_keys(compiled: Path, options: dict) -> None:
    backend, _ = load_compiled(compiled / "c4", options)
    d = backend.describe()
    assert tuple(d) == DESCRIBE_KEYS and d["backend"] == "onnxruntime" and d["runtime_version"]
    assert all(isinstance(v, str) for v in d["extra"].values())
