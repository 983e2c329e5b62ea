"""The abtest worker (omzoo.timing.worker) as a real process driven by omzoo.timing.pairs.Worker: it loads a compiled
artefact once, answers rounds and infer requests, keeps its protocol clean of what a runtime prints, reports errors
by side; and an acl pair on the fake CANN tree starts each side again in its own toolkit's environment."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_cann import cann_tree, records
from test_backend_acl import fake_om

from omzoo.core import zoo
from omzoo.core.metrics import ROUND_METRICS
from omzoo.core.params import BenchConfig
from omzoo.data.preprocess import preprocess
from omzoo.data.shards import ShardSet
from omzoo.timing import worker
from omzoo.timing.pairs import Launch, Worker, WorkerError, launch_env

SRC = Path(worker.__file__).resolve().parents[2]
FAST = BenchConfig(warmup_iters=1, warmup_s=0.0, min_iters=2, min_s=0.02, max_s=5.0)


def launch(tmp_path: Path, side: str = "base", python: str = sys.executable) -> Launch:
    return Launch(side, python, tmp_path, launch_env(SRC), tmp_path / "logs" / f"{side}.log")


def test_a_worker_loads_once_then_answers_rounds_and_infer(compiled: Path, sample: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    preprocess(zoo.get("ran92_cifar10").recipe, sample / "cifar-10-batches-py", None, shards, progress=False)
    with Worker(launch(tmp_path)) as w:
        loaded = w.load(compiled / "c4", FAST)
        assert loaded["meta"]["batch_size"] == 4 and loaded["describe"]["runtime"] == "onnxruntime"
        assert loaded["warmup_iters"] >= 1 and loaded["pid"] != os.getpid()
        first, second = w.round(3), w.round(0)
        for r in (first, second):
            assert all(r[m] > 0 for m in ROUND_METRICS) and r["iters"] >= 2 and r["contended"] in (0, 1)
        got = w.infer(shards)
        pid = w.proc.pid if w.proc else None
    data = ShardSet(shards)
    assert got["names"] == data.names and len(got["predicted"]) == len(data) == len(got["top5"])
    assert got["labels"] == data.labels.tolist() and got["shards_hash"] == data.hash
    assert all(row[0] == p for row, p in zip(got["top5"], got["predicted"], strict=True))
    assert pid == loaded["pid"]  # one process served every request: the session stayed loaded


def test_what_a_runtime_prints_cannot_corrupt_the_protocol() -> None:
    """Once the worker runs, fd 1 is stderr: a print goes to the log and the replies stay parseable."""
    replies = io.StringIO()
    worker.serve(io.StringIO(json.dumps({"op": "nonsense"}) + "\n"), replies)
    assert json.loads(replies.getvalue()) == {"error": "unknown request 'nonsense'"}
    code = "print('banner', flush=True); import omzoo.timing.worker as w; w.main(); print('after')"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps({"op": "round"}) + "\n",
                          capture_output=True, text=True, env=launch_env(SRC))
    lines = proc.stdout.splitlines()
    assert lines == ["banner", json.dumps({"error": "ValueError: round before load"})]
    assert "after" in proc.stderr


def test_a_failing_side_is_named_with_its_log(compiled: Path, tmp_path: Path) -> None:
    with Worker(launch(tmp_path, "head")) as w, pytest.raises(WorkerError) as e:
        w.load(tmp_path / "nowhere", FAST)
    assert str(e.value).startswith("head: load: FileNotFoundError") and "not a compiled artefact" in str(e.value)
    dead = Worker(launch(tmp_path, "base", python=str(tmp_path / "no-python")))
    with pytest.raises(FileNotFoundError):
        dead.start()


def test_an_acl_pair_starts_each_side_again_in_its_own_cann_root(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """BASE on CANN 8.0, HEAD on 8.1: each worker is asked to restart in its root's set_env.sh environment and
    then imports that root's (fake) aclruntime, which finds no NPU here: the error names the side."""
    ascend = cann_tree(tmp_path / "host")
    record = tmp_path / "aclruntime.jsonl"
    monkeypatch.setenv("FAKE_ACLRUNTIME_RECORD", str(record))
    monkeypatch.delenv("OMZOO_CANN_HOME", raising=False)
    failures = {}
    for side, version in (("base", "8.0.RC3"), ("head", "8.1.RC1")):
        home = ascend / "ascend-toolkit" / version
        art = tmp_path / side / "ran92_cifar10-1"
        art.mkdir(parents=True)
        fake_om(art / "ran92_cifar10-1.om", 32 * 32 * 3, [1, 3, 32, 32])
        (art / "meta.json").write_text(json.dumps({
            "model": "ran92_cifar10", "backend": "acl", "batch_size": 1, "artefact": "ran92_cifar10-1.om",
            "options": {"soc_version": "Ascend310P3", "cann_home": str(home)}}))
        with Worker(launch(tmp_path, side)) as w, pytest.raises(WorkerError) as e:
            w.load(art, FAST)
        failures[side] = str(e.value)
        assert w.extra_env["OMZOO_CANN_HOME"] == os.path.realpath(home)
    opened = records(record)
    assert [r["version"] for r in opened] == ["8.0.RC3", "8.1.RC1"]
    for r, version in zip(opened, ("8.0.RC3", "8.1.RC1"), strict=True):
        assert r["ld_library_path"].split(os.pathsep)[0] == str(ascend / "ascend-toolkit" / version / "lib64")
    for side in ("base", "head"):
        assert failures[side].startswith(f"{side}: load: RuntimeError: fake aclruntime: no NPU here")
