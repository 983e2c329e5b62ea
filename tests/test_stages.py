"""Unit tests of the stage logic that the end-to-end pipeline test only exercises on one path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo import cli, zoo
from omzoo.backends.base import BackendUnavailable, get_backend, pad_batch
from omzoo.bench import BenchConfig, benchmark, latency_stats, random_input, timed_loop
from omzoo.checkpoints import file_sha256
from omzoo.compile import ToolkitMismatch, compile_model, load_compiled
from omzoo.data.profiles import get_profile, normalize
from omzoo.evaluate import evaluate, fidelity, topk, topk_accuracy
from omzoo.export import export_onnx, load_model
from omzoo.infer import run_shards
from omzoo.weights import materialise, random_checkpoint

MODEL = "ran92_cifar10"


@pytest.mark.parametrize("verb", list(cli.VERBS))
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([verb, "--help"])
    assert e.value.code == 0
    assert "usage: omzoo " + verb in capsys.readouterr().out


def test_unknown_verb_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_reports_library_errors_without_traceback(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "omzoo.cli", "weights", MODEL, "--out", str(tmp_path / "w.pth"),
                        "--checkpoint", str(tmp_path / "missing.pth")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "omzoo weights: error:" in r.stderr and "missing.pth: no such checkpoint file" in r.stderr
    assert "Traceback" not in r.stderr


def test_pad_batch_repeats_the_last_row_and_reports_the_real_count() -> None:
    x = np.arange(3 * 2).reshape(3, 2)
    padded, n = pad_batch(x, 5)
    assert n == 3 and padded.shape == (5, 2)
    np.testing.assert_array_equal(padded[3:], np.repeat(x[-1:], 2, axis=0))
    assert pad_batch(x, 3)[0] is x
    with pytest.raises(ValueError, match="larger than the batch size"):
        pad_batch(x, 2)


def test_unknown_backend_and_missing_runtime_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        get_backend("tensorrt")
    with pytest.raises(BackendUnavailable, match="set_env.sh"):
        get_backend("acl").toolkit_version()


def test_random_weights_are_deterministic_and_marked(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    random_checkpoint(MODEL, a, seed=3)
    info = materialise(MODEL, b, None, seed=3)
    sa, sb = (torch.load(p, weights_only=False, map_location="cpu") for p in (a, b))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert info["weights"] == "random" and info["seed"] == 3 and info["sha256"] == file_sha256(b)


def test_published_checkpoint_is_verified_and_copied(tmp_path: Path) -> None:
    src = tmp_path / "model_92_sgd.pkl"
    random_checkpoint(MODEL, src, seed=1)
    info = materialise(MODEL, tmp_path / "out.pth", str(src), seed=0)
    assert info["weights"] == "published" and info["sha256"] == file_sha256(src)
    with pytest.raises(ValueError, match="does not fit"):
        materialise("tresnet_m", tmp_path / "bad.pth", str(src), seed=0)
    assert not (tmp_path / "bad.pth").exists()


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


class _Shards:
    """The slice of ShardSet that evaluate reads."""

    def __init__(self, labels: np.ndarray, dataset_size: int, n_skipped: int) -> None:
        self.labels = labels
        self.manifest = {"dataset_size": dataset_size, "n_skipped": n_skipped, "source": "x"}

    def __len__(self) -> int:
        return len(self.labels)


def test_evaluate_refuses_a_short_denominator() -> None:
    labels = np.array([1, 2, 3, 4])
    logits = np.eye(10)[[1, 2, 3, 0]].astype(np.float32)
    m = evaluate(MODEL, logits, _Shards(labels, 5, 1), {"weights": "published"}, None)
    assert m["top1"] == 75.0 and m["n_images"] == 4 and m["n_skipped"] == 1
    assert m["delta_top1"] == pytest.approx(75.0 - 95.34) and m["pass"] == 0
    with pytest.raises(ValueError, match="scored 4 images but the dataset has 6"):
        evaluate(MODEL, logits, _Shards(labels, 6, 1), {"weights": "published"}, None)


def test_evaluate_marks_random_weights_and_omits_pass() -> None:
    labels = np.array([1])
    m = evaluate(MODEL, np.eye(10)[[1]].astype(np.float32), _Shards(labels, 1, 0), {"weights": "random"}, None)
    assert m["random_weights"] == 1 and "pass" not in m


def test_timed_loop_meets_count_and_duration() -> None:
    calls = []
    r = timed_loop(lambda: calls.append(1) or 1.0, BenchConfig(warmup_iters=3, warmup_s=0.0, min_iters=7,
                                                                min_s=0.05, max_s=5.0))
    assert r["warmup_iters_done"] >= 3 and r["e2e"].size >= 7 and r["duration_s"] >= 0.05 and r["capped"] == 0
    assert len(calls) == r["warmup_iters_done"] + r["e2e"].size


def test_timed_loop_cap_is_flagged() -> None:
    r = timed_loop(lambda: None, BenchConfig(warmup_iters=0, warmup_s=0.0, min_iters=10**9, min_s=0.0, max_s=0.02))
    assert r["capped"] == 1 and r["compute"].size == 0


def test_latency_stats_use_numpy_percentiles() -> None:
    ms = np.arange(1, 101, dtype=float)
    s = latency_stats(ms)
    assert s["p90"] == np.percentile(ms, 90) and s["p99"] == pytest.approx(99.01) and s["count"] == 100


def test_random_input_is_seeded_and_never_zero() -> None:
    a = random_input((2, 3, 4, 4), np.dtype(np.uint8), 0)
    assert a.dtype == np.uint8 and a.any()
    np.testing.assert_array_equal(a, random_input((2, 3, 4, 4), np.dtype(np.uint8), 0))
    assert random_input((2, 3), np.dtype(np.float32), 1).dtype == np.float32


def test_bench_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown keys \\['min_iter'\\]"):
        BenchConfig.from_params({"min_iter": 3})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RAN-92 (random weights) exported with uint8 input and compiled for ONNX Runtime at bs 4."""
    d = tmp_path_factory.mktemp("compiled")
    random_checkpoint(MODEL, d / "w.pth", seed=2)
    export_onnx(load_model(MODEL, d / "w.pth"), zoo.get(MODEL), d / "m.onnx", input_dtype="uint8")
    compile_model(MODEL, 4, d / "c4", {"backend": "onnxruntime", "onnxruntime": {"threads": 2}}, d / "m.onnx",
                  d / "w.pth")
    return d


def test_compiled_ort_artefact_matches_torch_and_pads_the_last_batch(compiled: Path) -> None:
    backend, meta = load_compiled(compiled / "c4")
    assert meta["batch_size"] == 4 and backend.input_spec() == ((4, 3, 32, 32), np.dtype(np.uint8))
    pixels = np.random.default_rng(0).integers(0, 256, (7, 3, 32, 32), dtype=np.uint8)

    class Shards:
        root = compiled

        def __len__(self) -> int:
            return 7

        def iter_batches(self, bs: int):
            return (pixels[i:i + bs] for i in range(0, 7, bs))

    logits, timing = run_shards(backend, Shards(), 4)
    model = load_model(MODEL, compiled / "w.pth")
    with torch.no_grad():
        ref = model(torch.from_numpy(normalize(pixels, get_profile("cifar")))).numpy()
    assert logits.shape == (7, 10) and timing["n_images"] == 7
    assert np.abs(logits - ref).max() < 1e-3


def test_bench_on_a_compiled_artefact(compiled: Path) -> None:
    backend, _ = load_compiled(compiled / "c4")
    m = benchmark(backend, 4, BenchConfig(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, max_s=10.0))
    assert m["iters"] >= 3 and m["throughput_compute_ips"] > 0
    assert m["throughput_compute_ips"] == pytest.approx(4000 / m["compute_ms"]["mean"], rel=1e-3)
    meta = json.loads((compiled / "c4" / "meta.json").read_text())
    assert meta["toolkit_version"] and str(compiled / "m.onnx") in meta["sources"]


def test_toolkit_branch_must_match_the_installed_runtime(compiled: Path, tmp_path: Path) -> None:
    params = {"backend": "onnxruntime", "toolkit": {"version": "0.0.1"}}
    with pytest.raises(ToolkitMismatch, match="toolkit.version is '0.0.1' but this machine has onnxruntime"):
        compile_model(MODEL, 1, tmp_path / "c1", params, compiled / "m.onnx", None)


def test_predict_from_checkpoint_and_from_onnx_agree(compiled: Path, tmp_path: Path) -> None:
    from omzoo.data.readers import read_dataset
    from omzoo.data.sample import write_sample
    from omzoo.predict import predict

    write_sample(tmp_path / "s")
    cifar = tmp_path / "s" / "cifar-10-batches-py"
    by_ckpt, names, labels = predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", batch_size=16, workers=1)
    by_onnx, names2, _ = predict(MODEL, cifar, None, onnx=compiled / "m.onnx", batch_size=16, workers=1)
    dataset = read_dataset(cifar, None)
    assert names == names2 and len(names) == 64 and by_ckpt.shape == (64, 10)
    assert labels is not None and list(labels) == [item.label for item in dataset.items]
    assert np.abs(by_ckpt - by_onnx).max() < 1e-3
    with torch.no_grad():
        ref = load_model(MODEL, compiled / "w.pth")(torch.from_numpy(normalize(dataset.pixels(range(64)),
                                                                               get_profile("cifar")))).numpy()
    assert np.abs(by_ckpt - ref).max() < 1e-3  # channels_last on the CPU reorders sums
    with pytest.raises(ValueError, match="exactly one of"):
        predict(MODEL, cifar, None, checkpoint=compiled / "w.pth", onnx=compiled / "m.onnx")
