"""`omzoo bench` end to end on conftest.py's `compiled` artefact (RAN-92, ONNX Runtime, bs 4): the metrics file holds
every bench metric of omzoo.core.metrics.SCHEMA and nothing else, the rounds file each round's samples, the info
file the backend's describe() and where the artefact came from; an out-of-memory is a recorded result, any other
error leaves the previous files as they were."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from omzoo import cli
from omzoo.backends.base import DESCRIBE_KEYS, DeviceProcess
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.core import metrics
from omzoo.core.io import sha256_file
from omzoo.core.provenance import FINGERPRINT
from omzoo.stages import bench

MODEL, BS, ROUNDS = "ran92_cifar10", 4, 3


@pytest.fixture
def run_bench(compiled: Path, tmp_path: Path):
    """`omzoo bench` on the artefact with a short measurement: its exit status, and the three files it writes."""
    params = tmp_path / "params.yaml"
    params.write_text(f"bench: {{warmup_iters: 1, warmup_s: 0.0, min_iters: 2, min_s: 0.0, max_s: 5.0, "
                      f"rounds: {ROUNDS}, seed: 3}}\n")
    out = {"out": tmp_path / "m.json", "info": tmp_path / "i.json", "rounds": tmp_path / "r.json"}

    def run() -> int:
        argv = ["bench", "--compiled", str(compiled / "c4"), "--params", str(params)]
        return cli.main(argv + [a for name, path in out.items() for a in (f"--{name}", str(path))])

    return run, out


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_files_follow_the_schema(run_bench, compiled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, out = run_bench
    assert run() == 0
    numbers = _json(out["out"])
    flat = metrics.flatten(numbers)
    assert set(flat) == {m.name for m in metrics.of("bench")} - {metrics.FAILED}  # failed: only when it failed
    for name, value in flat.items():
        assert isinstance(value, int if metrics.get("bench", name).digits == 0 else int | float), name
    assert flat["bs"] == BS and flat["rounds"] == ROUNDS and flat["device_busy"] == 0
    assert flat["throughput_compute_ci_low"] <= flat["throughput_compute_ips"] <= flat["throughput_compute_ci_high"]
    assert flat["e2e_ms.min"] <= flat["e2e_ms.p50"] <= flat["e2e_ms.max"]

    rounds = _json(out["rounds"])
    assert rounds["model"] == MODEL and rounds["bs"] == BS and set(rounds["samples"]) == set(metrics.ROUND_METRICS)
    assert all(len(s) == ROUNDS for s in rounds["samples"].values())
    assert len(rounds["rounds"]) == ROUNDS + flat["retries"] and sum(r["kept"] for r in rounds["rounds"]) == ROUNDS

    info, meta = _json(out["info"]), _json(compiled / "c4" / "meta.json")
    assert set(DESCRIBE_KEYS) <= set(info) and info["backend"] == "onnxruntime" and info["runtime"] == "onnxruntime"
    assert (info["model"], info["batch_size"], info["seed"]) == (MODEL, BS, 3)
    artefact = compiled / "c4" / meta["artefact"]
    assert info["artefact"] == str(artefact) and info["artefact_sha256"] == sha256_file(artefact)
    assert (info["input_shape"], info["input_dtype"]) == (f"{BS}x3x32x32", "uint8")
    assert info["toolkit_version"] == meta["toolkit_version"] and info["compiled_from"] == meta["sources"]
    assert info["interval"] == bench.INTERVAL and "device_processes" not in info  # no accelerator
    assert info[FINGERPRINT] == meta[FINGERPRINT]  # the toolkit it was compiled under is the one it ran under

    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"bench {MODEL} bs{BS}: ") and f"{ROUNDS} rounds" in printed[0]
    assert ("CONTENDED" in printed[0]) == bool(flat["contended"])
    assert json.loads(printed[-1].removeprefix("RESULT ")) == {"model": MODEL, **numbers}


def test_an_accelerator_records_what_else_is_on_it(run_bench, monkeypatch: pytest.MonkeyPatch) -> None:
    """The processes on the device before the run, less this one, and its state go into the info file; the metrics
    say the device was busy."""
    listed = [DeviceProcess("gpu", os.getpid(), 512.0), DeviceProcess("gpu", 4242, 1536.0, "python3")]
    monkeypatch.setattr(OrtBackend, "accelerator", lambda self: "gpu")
    monkeypatch.setattr(OrtBackend, "device_processes", lambda self: listed)
    monkeypatch.setattr(OrtBackend, "device_state", lambda self: {"gpu_before": "NVIDIA H200, 3 %, 512 MiB"})
    run, out = run_bench
    assert run() == 0
    info = _json(out["info"])
    assert info["device_processes"] == "gpu pid 4242 python3" and info["gpu_before"] == "NVIDIA H200, 3 %, 512 MiB"
    assert _json(out["out"])["device_busy"] == 1


def test_out_of_memory_is_a_recorded_result(run_bench, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def oom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Failed to allocate memory for requested buffer of size 123")

    monkeypatch.setattr(bench, "benchmark", oom)
    run, out = run_bench
    assert run() == 0  # a sweep goes on
    assert _json(out["out"]) == metrics.record("bench", {"bs": BS, "failed": 1}) == {"bs": BS, "failed": 1}
    assert _json(out["rounds"]) == {"model": MODEL, "failed": 1}
    error = "RuntimeError: Failed to allocate memory for requested buffer of size 123"
    assert _json(out["info"])["error"] == error
    assert capsys.readouterr().err.endswith(f"bench {MODEL} bs{BS}: out of memory, recorded as failed: {error}\n")


def test_any_other_error_fails_and_leaves_the_previous_files(run_bench, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    run, out = run_bench
    assert run() == 0
    before = {name: path.read_bytes() for name, path in out.items()}
    closed: list[bool] = []
    monkeypatch.setattr(OrtBackend, "close", lambda self: closed.append(True))

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("bad input shape")

    monkeypatch.setattr(bench, "benchmark", broken)
    assert run() == 2
    assert capsys.readouterr().err.strip().endswith("omzoo bench: error: bad input shape")
    assert {name: path.read_bytes() for name, path in out.items()} == before and closed == [True]
