"""torch backend on the CPU (the CUDA paths run on a GPU machine only): the compiled artefact is the checkpoint,
and its uint8-input model gives the reference logits of load_model + normalize. Also the host checks `omzoo doctor`
prints (the NVIDIA side of the host is test_backend_nvidia.py's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omzoo.backends.artefact import compile_artefact, load_compiled
from omzoo.backends.base import CompileSource, get_backend
from omzoo.backends.checks import HostPlan, usable_cores
from omzoo.backends.torch import TorchBackend, clear_compiled_cache
from omzoo.core import zoo
from omzoo.core.checkpoints import CheckpointError, read_checkpoint, save_container
from omzoo.core.errors import BackendUnavailable
from omzoo.core.model import load_model, random_checkpoint
from omzoo.core.onnxgraph import random_input
from omzoo.core.recipe import normalize
from omzoo.timing.measure import BenchConfig, benchmark

MODEL = "ran92_cifar10"
BS = 4
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "model_92_sgd.pkl"
    random_checkpoint(zoo.get(MODEL), path, seed=0)
    return path


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    return random_input((BS, *zoo.get(MODEL).input_size), np.dtype(np.uint8), seed=1)


@pytest.fixture(scope="module")
def reference(checkpoint: Path, pixels: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(normalize(pixels, zoo.get(MODEL).recipe))
    with torch.inference_mode():
        return load_model(zoo.get(MODEL), checkpoint)(x).numpy()


def _compiled(tmp_path: Path, checkpoint: Path, options: dict) -> TorchBackend:
    meta = compile_artefact(zoo.get(MODEL), BS, tmp_path / "art", "torch", options, checkpoint=checkpoint)
    assert meta["backend"] == "torch" and meta["toolkit_version"] == torch.__version__
    backend, _ = load_compiled(tmp_path / "art")
    assert isinstance(backend, TorchBackend)
    return backend


@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_fp32_matches_reference(tmp_path, checkpoint, pixels, reference, channels_last):
    backend = _compiled(tmp_path, checkpoint, {"device": "cpu", "precision": "fp32", "channels_last": channels_last})
    assert backend.input_spec() == ((BS, 3, 32, 32), np.dtype(np.uint8))
    logits = backend.run(backend.feed(pixels))
    assert logits.dtype == np.float32 and logits.shape == (BS, 10)
    # NCHW runs the reference's own kernels; channels_last picks other conv kernels (1.8e-4 seen), so it gets
    # the fp32 parity tolerance (1e-3)
    np.testing.assert_allclose(logits, reference, atol=1e-3 if channels_last else 1e-4, rtol=0)


def test_artefact_is_the_checkpoint(tmp_path, checkpoint):
    backend = TorchBackend({"device": "cpu"})
    art = backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint), BS, tmp_path)
    assert art.read_bytes() == checkpoint.read_bytes()
    assert backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint), BS, tmp_path) == art  # again
    with pytest.raises(ValueError, match="checkpoint"):
        backend.compile(CompileSource(spec=zoo.get(MODEL)), BS, tmp_path)


def test_wrong_checkpoint_fails_at_compile(tmp_path, checkpoint):
    sd = read_checkpoint(checkpoint).state_dict
    other = tmp_path / "renamed.pth"
    save_container({("x." + k if i == 0 else k): v for i, (k, v) in enumerate(sd.items())}, other, "state_dict")
    with pytest.raises(CheckpointError, match="missing|unexpected"):
        TorchBackend({"device": "cpu"}).compile(CompileSource(spec=zoo.get(MODEL), checkpoint=other), BS, tmp_path)


def test_fp16_on_cpu_is_a_clear_error(tmp_path, checkpoint):
    backend = TorchBackend({"device": "cpu", "precision": "fp16"})
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint), BS, tmp_path)


def test_bad_options():
    with pytest.raises(ValueError, match=r"torch: unknown key\(s\) \['devcie'\]"):
        TorchBackend({"devcie": "cpu"})
    with pytest.raises(ValueError, match="precision"):
        TorchBackend({"precision": "int8"})
    with pytest.raises(ValueError, match="not supported"):
        TorchBackend({"device": "meta"}).resolve_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_gpu_is_unavailable(tmp_path, checkpoint, device):
    backend = get_backend("torch", {"device": device})
    with pytest.raises(BackendUnavailable, match="sees no CUDA GPU"):
        backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint), BS, tmp_path)
    with pytest.raises(BackendUnavailable):
        backend.load(checkpoint, BS, zoo.get(MODEL))
    assert TorchBackend({"device": "auto"}).resolve_device().type == "cpu"


def test_step_bench_and_describe(tmp_path, checkpoint, pixels):
    backend = _compiled(tmp_path, checkpoint, {"device": "cpu", "threads": 1})
    ms = backend.step(backend.feed(pixels))
    assert isinstance(ms, float) and ms > 0
    cfg = BenchConfig(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, max_s=10.0)
    metrics, _ = benchmark(backend, BS, cfg)
    assert metrics["iters"] >= 3 and metrics["throughput_compute_ips"] > 0 and metrics["throughput_e2e_ips"] > 0
    info = backend.describe()
    assert info["backend"] == "torch" and info["runtime_version"] == torch.__version__
    assert info["precision"] == "fp32" and info["extra"]["cuda_graphs"] == "0" and info["threads"].startswith("torch=1")
    with pytest.raises(ValueError, match="expected uint8"):
        backend.run(pixels[:2])
    with pytest.raises(TypeError):
        backend.feed(pixels.astype(np.float32))
    backend.close()


@pytest.mark.device
@cuda
@pytest.mark.parametrize("compiled", [False, True])
def test_cuda_fp16_graphs_close_to_fp32(tmp_path, checkpoint, pixels, reference, compiled):
    """fp16 is compared by tolerance and top-5 overlap, not argmax: fp16 rounding flips near-ties."""
    clear_compiled_cache()
    opts = {"device": "cuda", "precision": "fp16", "channels_last": True, "compile": compiled, "cuda_graphs": True}
    backend = _compiled(tmp_path, checkpoint, opts)
    logits = backend.run(backend.feed(pixels))
    assert np.abs(logits - reference).max() < 1.0
    top5 = np.argsort(-logits, 1)[:, :5]
    ref5 = np.argsort(-reference, 1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5, ref5, strict=True)])
    assert overlap >= 0.9
    assert backend.step(backend.feed(pixels)) > 0
    assert backend.describe()["extra"]["cuda_graphs"] == "1"
    backend.close()


@pytest.mark.device
@cuda
def test_cuda_fp32_matches_reference(tmp_path, checkpoint, pixels, reference):
    backend = _compiled(tmp_path, checkpoint, {"device": "cuda", "precision": "fp32"})
    np.testing.assert_allclose(backend.run(backend.feed(pixels)), reference, atol=1e-3, rtol=0)
    backend.close()


# --------------------------------------------------------------------------- the host checks


def test_host_checks_on_the_cpu() -> None:
    checks = TorchBackend({"device": "cpu", "threads": 1}).host_checks(HostPlan())
    assert [c.name for c in checks] == ["toolkit.version", "device", "threads"]
    assert all(c.status == "ok" for c in checks), [c.line() for c in checks]
    assert f"installed {torch.__version__}" in checks[0].detail and checks[1].detail.startswith("cpu (")
    assert ("sees no CUDA GPU" in checks[1].detail) == (not torch.cuda.is_available())
    pinned = TorchBackend({"device": "cpu"}).host_checks(HostPlan(toolkit_version="0.0"))[0]
    assert pinned.status == "FAIL"
    assert pinned.fix == f"install torch 0.0 or check out the branch for {torch.__version__}"
    crowded = TorchBackend({"device": "cpu", "threads": usable_cores() + 1}).host_checks(HostPlan())[-1]
    assert crowded.status == "FAIL" and crowded.fix == f"set torch.threads to {usable_cores()} or less"
    fp16 = TorchBackend({"device": "cpu", "precision": "fp16"}).host_checks(HostPlan())
    assert [c.name for c in fp16] == ["toolkit.version", "device"] and "fp16 needs a CUDA device" in fp16[1].detail


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without CUDA")
def test_host_checks_without_cuda_say_so() -> None:
    (_, device) = TorchBackend({"device": "cuda"}).host_checks(HostPlan())
    assert device.status == "FAIL" and "sees no CUDA GPU" in device.detail and "torch.device" in device.fix
