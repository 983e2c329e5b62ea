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


def test_the_fingerprint_names_the_toolkit_and_the_host_and_is_stable(compiled: Path) -> None:
    from omzoo.core.provenance import cpu_model, usable_cores

    backend, _ = load_compiled(compiled / "c4")
    fp = backend.fingerprint()
    d = backend.describe()
    assert {k: fp[k] for k in DESCRIBE_KEYS if k != "extra"} == {k: str(d[k]) for k in DESCRIBE_KEYS if k != "extra"}
    assert fp["providers"] == d["extra"]["providers"] and fp["cpu"] == cpu_model() == fp["device"]
    assert fp["cores"] == str(usable_cores()) and fp["threads"].startswith("intra_op=")
    assert "compute_interval" not in fp  # describe()'s explanations are not the toolkit
    # the same toolkit, loaded or not, gives the same fingerprint: compile (not loaded) and bench (loaded) agree
    assert get_backend("onnxruntime", backend.options).fingerprint() == fp


def test_a_result_refuses_a_toolkit_file_of_another_toolkit(compiled: Path, tmp_path: Path) -> None:
    from omzoo.core.provenance import fingerprint_hash, write_fingerprint

    backend, _ = load_compiled(compiled / "c4")
    mine = backend.fingerprint()
    write_fingerprint(tmp_path / "toolkit.json", mine)
    assert backend.checked_fingerprint(tmp_path / "toolkit.json") == fingerprint_hash(mine) == \
        backend.checked_fingerprint()
    # what the toolkit stage wrote before an in-place upgrade: the result would be labelled with the old toolkit
    write_fingerprint(tmp_path / "toolkit.json", {**mine, "runtime_version": "1.0.0"})
    with pytest.raises(ValueError, match=r"toolkit.json: names toolkit \w+ but this host now has "
                                         rf"{fingerprint_hash(mine)} \(runtime_version '1.0.0' -> "):
        backend.checked_fingerprint(tmp_path / "toolkit.json")
