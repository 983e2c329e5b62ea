"""torch backend on the CPU (the CUDA paths run on a GPU machine only): the compiled artefact is the checkpoint,
and its uint8-input model gives the reference logits of load_model + normalize. Also the host checks `omzoo doctor`
prints (the NVIDIA side of the host is test_backend_nvidia.py's)."""

from __future__ import annotations

import json
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
from omzoo.core.params import ParamsError
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


def _compiled(tmp_path: Path, checkpoint: Path, options: dict, precision: str = "fp32") -> TorchBackend:
    """What the compile stage makes at `precision`, loaded as infer and bench load it (precision from meta.json)."""
    backend = TorchBackend(options)
    backend.precision = precision  # as compile_artefact sets it from the axis
    backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint, precision=precision), BS,
                    tmp_path / "art")
    meta = {"model": MODEL, "backend": "torch", "options": options, "batch_size": BS, "artefact": "model.pth",
            "precision": precision, "precision_record": backend.precision_record(),
            "toolkit_version": backend.toolkit_version()}
    (tmp_path / "art" / "meta.json").write_text(json.dumps(meta))
    loaded = TorchBackend(options)
    loaded.precision = precision  # as load_compiled sets it from the artefact's meta.json
    loaded.load(tmp_path / "art" / "model.pth", BS, zoo.get(MODEL))
    return loaded


@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_fp32_matches_reference(tmp_path, checkpoint, pixels, reference, channels_last):
    backend = _compiled(tmp_path, checkpoint, {"device": "cpu", "channels_last": channels_last})
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


def test_fp16_on_cpu_is_refused_in_one_line(tmp_path, checkpoint):
    backend = TorchBackend({"device": "cpu"})
    with pytest.raises(ValueError) as err:
        backend.check_precision("fp16")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("backend torch cannot run precision 'fp16' on cpu: fp16 needs a CUDA")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        backend.compile(CompileSource(spec=zoo.get(MODEL), checkpoint=checkpoint, precision="fp16"), BS, tmp_path)
    assert not (tmp_path / "model.pth").exists()
    backend.precision = "fp16"  # an fp16 artefact from a CUDA host, loaded on this CPU
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        backend.load(checkpoint, BS, zoo.get(MODEL))
    for ok in ("fp32", "bf16"):
        backend.check_precision(ok)
    with pytest.raises(ValueError, match="backend torch cannot run precision 'int8'"):
        backend.check_precision("int8")


def test_bf16_on_cpu_runs_close_to_fp32(tmp_path, checkpoint, pixels, reference):
    """bf16 weights and activations (8 mantissa bits), normalisation in float32: finite float32 logits near fp32."""
    backend = _compiled(tmp_path, checkpoint, {"device": "cpu", "channels_last": False}, precision="bf16")
    assert next(backend._fn.model.model.parameters()).dtype == torch.bfloat16
    seen = []  # what the model itself gets: the float32 normalisation's result, cast to bf16
    backend._fn.model.model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))
    logits = backend.run(backend.feed(pixels))
    assert logits.dtype == np.float32 and logits.shape == (BS, 10) and np.isfinite(logits).all()
    assert seen == [torch.bfloat16]
    # bf16 keeps 2-3 significant digits per op; through RAN-92's depth (random weights) that compounds: 0.988
    # correlation and 15 % of the largest logit were seen, so the bounds say "the same model", not parity
    assert np.corrcoef(logits.ravel(), reference.ravel())[0, 1] > 0.95
    assert np.abs(logits - reference).max() < 0.25 * np.abs(reference).max()
    assert backend.describe()["precision"] == "bf16"
    assert backend.precision_record() == {"precision": "bf16", "dtype": "torch.bfloat16"}
    assert backend.step(backend.feed(pixels)) > 0
    backend.close()


def test_the_fingerprint_is_the_same_at_every_precision():
    fp32, bf16 = TorchBackend({"device": "cpu"}), TorchBackend({"device": "cpu"})
    bf16.precision = "bf16"
    assert fp32.fingerprint() == bf16.fingerprint() and fp32.fingerprint()["precision"] == "fp32"
    assert bf16.precision == "bf16" and bf16.describe()["precision"] == "bf16"


def test_bad_options():
    with pytest.raises(ValueError, match=r"torch: unknown key\(s\) \['devcie'\]"):
        TorchBackend({"devcie": "cpu"})
    with pytest.raises(ParamsError) as err:  # the old option: one line saying where it went
        TorchBackend({"device": "cpu", "precision": "fp16"})
    assert "\n" not in str(err.value) and str(err.value).startswith("torch.precision has moved")
    assert "`precisions:`" in str(err.value)
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
    meta = compile_artefact(zoo.get(MODEL), BS, tmp_path / "art", "torch", {"device": "cpu", "threads": 1},
                            checkpoint=checkpoint)  # the compile stage's own path
    assert meta["backend"] == "torch" and meta["toolkit_version"] == torch.__version__
    backend, _ = load_compiled(tmp_path / "art")
    assert isinstance(backend, TorchBackend)
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
    opts = {"device": "cuda", "channels_last": True, "compile": compiled, "cuda_graphs": True}
    backend = _compiled(tmp_path, checkpoint, opts, precision="fp16")
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
    backend = _compiled(tmp_path, checkpoint, {"device": "cuda"})
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a machine without CUDA")
def test_host_checks_without_cuda_say_so() -> None:
    (_, device) = TorchBackend({"device": "cuda"}).host_checks(HostPlan())
    assert device.status == "FAIL" and "sees no CUDA GPU" in device.detail and "torch.device" in device.fix
