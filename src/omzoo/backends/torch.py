"""PyTorch backend: the checkpoint itself is the artefact, run eagerly or through torch.compile (+ CUDA graphs).

compile = a hardlink (or copy) of the checkpoint, loaded strictly once to fail early, so the bench stage
measures exactly the weights that were evaluated. Everything device-specific happens in load(): the model takes
raw uint8 NCHW pixels (omzoo.core.model.PixelInput: /255 and mean/std in float32 on the device, a quarter of
float32's host→device bytes), then casts to the working precision and layout.

Precision is the pipeline's axis (`precisions:`), not an option: fp32; fp16 (CUDA only); bf16 (CPU and CUDA). The
weights are cast to it, normalisation stays float32 and its result is cast, logits come back float32. The precision
an artefact runs at is its meta.json's (self.precision, set before load()).

Options (params.yaml `torch:`):
- device: "auto" (cuda when available, else cpu) | "cpu" | "cuda" | "cuda:N"
- channels_last: bool
- compile: bool (torch.compile); compile_mode: "default" | "max-autotune-no-cudagraphs" | ...;
  freezing: bool (Inductor folds BN into convs and pre-lays-out weights; default true);
  dynamic: bool (symbolic batch axis, default true: one Inductor graph serves every batch size > 1, so the
  on-disk Inductor cache is shared by all batch sizes' stages, and benchmarks/bench_gpu.py, which runs every batch
  size in one process, compiles once)
- cuda_graphs: bool | "auto" (default: on for CUDA): one CUDA graph at the loaded batch size, replayed per step
- tf32: bool (default false: fp32 stays fp32, the precision the fp32 parity tolerances assume)
- threads: int (0 = torch's default), for CPU runs

On CUDA the GPU's other processes, state and driver come from nvidia-smi (backends/nvidia.py).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from omzoo.backends import nvidia
from omzoo.backends.base import CompileSource
from omzoo.backends.checks import DEVICE, Check, HostPlan, threads_check
from omzoo.core.errors import BackendUnavailable
from omzoo.core.params import TorchOptions
from omzoo.core.provenance import cpu_model
from omzoo.core.zoo import ModelSpec

if TYPE_CHECKING:
    import torch

#: the working dtype of each precision the backend runs (Backend.PRECISIONS)
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_WARMUP_CALLS = 3  # before capture: compilation, Triton/cuDNN autotuning and allocator growth happen here

#: Compiled modules by (artefact identity, options, device): artefacts of one checkpoint at several batch sizes
#: (hardlinks of one file) share one torch.compile'd module within a process, so benchmarks/bench_gpu.py's run over
#: batch sizes compiles once.
_COMPILED: dict[tuple, torch.nn.Module] = {}


def clear_compiled_cache() -> None:
    """Forget the compiled modules (benchmarks/bench_gpu.py calls this between models to free device memory)."""
    _COMPILED.clear()


def _torch():
    try:
        import torch
    except ImportError as e:
        raise BackendUnavailable("the torch backend needs PyTorch (`pip install torch`)") from e
    return torch


def _no_cuda(torch: Any) -> str:
    """Why this torch has no GPU to offer, for messages: its version and whether it was built for CUDA at all."""
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return f"torch {torch.__version__} ({build}) sees no CUDA GPU"


def _cast_module(model: torch.nn.Module, dtype: torch.dtype, channels_last: bool) -> torch.nn.Module:
    """float32 normalised input → working dtype and layout → model → float32 logits (PixelInput wraps this)."""
    torch = _torch()

    class Cast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.to(dtype)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float()

    return Cast()


class TorchBackend(nvidia.GpuBackend):
    name = "torch"
    Options = TorchOptions
    FINGERPRINT_EXTRA = ("cuda", "cudnn", "driver")
    PRECISIONS = tuple(_DTYPES)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.device: torch.device | None = None
        self.batch_size = 0
        self._fn: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._x: torch.Tensor | None = None  # device-resident input buffer (CUDA)
        self._out: torch.Tensor | None = None  # the graph's static output
        self._graph = None
        self._events: tuple[Any, Any] | None = None
        self.setup_s = 0.0  # load()'s wall time: build, compile and capture

    # -- configuration -------------------------------------------------------------------------------------
    def resolve_device(self) -> torch.device:
        """The device the options ask for; BackendUnavailable if it is not there."""
        torch = _torch()
        wanted = str(self.options["device"])
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(wanted)
        except RuntimeError as e:
            raise ValueError(f"torch backend: bad device {wanted!r} (auto, cpu, cuda or cuda:N)") from e
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(f"torch backend: device {wanted!r} requested but {_no_cuda(torch)}; set "
                                         "torch.device to cpu or auto, or install a CUDA build of torch on a machine "
                                         "with an NVIDIA GPU")
            index = dev.index if dev.index is not None else torch.cuda.current_device()
            if index >= torch.cuda.device_count():
                raise BackendUnavailable(f"torch backend: {wanted!r} requested but only "
                                         f"{torch.cuda.device_count()} CUDA device(s) are visible")
            dev = torch.device("cuda", index)
        elif dev.type != "cpu":
            raise ValueError(f"torch backend: device {wanted!r} is not supported (auto, cpu, cuda or cuda:N)")
        return dev

    def check_precision(self, precision: str) -> None:
        """fp16 needs CUDA: CPU half convolutions are slow and not what the fp16 tolerances describe. bf16 and fp32
        run on either. BackendUnavailable when the device itself is missing."""
        super().check_precision(precision)
        if precision == "fp16" and (dev := self.resolve_device()).type != "cuda":
            raise ValueError(f"backend torch cannot run precision 'fp16' on {dev}: fp16 needs a CUDA device (bf16 "
                             "runs on the CPU); remove fp16 from `precisions:` or set torch.device to cuda")

    def dtype(self) -> torch.dtype:
        """The working dtype of this backend's precision."""
        return getattr(_torch(), _DTYPES[self.precision])

    def precision_record(self) -> dict[str, Any]:
        return {"precision": self.precision, "dtype": str(self.dtype())}

    def _use_graphs(self, dev: torch.device) -> bool:
        graphs = self.options["cuda_graphs"]
        if dev.type != "cuda":
            return False  # CUDA graphs have no CPU counterpart; "auto" params must stay portable
        return True if graphs == "auto" else bool(graphs)

    # -- compile / load ------------------------------------------------------------------------------------
    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        from omzoo.core.model import load_model

        if src.checkpoint is None:
            raise ValueError("the torch backend compiles from a checkpoint; none was given")
        self.resolve_device()  # an impossible configuration fails at compile, not three stages later
        self.check_precision(src.precision)
        self.precision = src.precision
        load_model(src.spec, src.checkpoint)  # strict: a wrong file fails here, with the loader's message
        out_dir.mkdir(parents=True, exist_ok=True)
        artefact = out_dir / "model.pth"
        if artefact.exists() or artefact.is_symlink():
            artefact.unlink()
        try:
            os.link(src.checkpoint, artefact)  # no copy of a 200 MB file per batch size
        except OSError:
            shutil.copyfile(src.checkpoint, artefact)
        return artefact

    def _cache_key(self, artefact: Path, dev: torch.device) -> tuple:
        st = artefact.stat()  # hardlinks of one checkpoint share (st_dev, st_ino)
        return (self.spec.id, tuple(sorted((k, str(v)) for k, v in self.spec.options.items())), st.st_dev, st.st_ino,
                st.st_size, st.st_mtime_ns, str(dev), self.precision,
                tuple(sorted((k, str(v)) for k, v in self.options.items())))

    def _compile(self, module: torch.nn.Module) -> torch.nn.Module:
        torch = _torch()
        import torch._inductor as inductor

        options = {**inductor.list_mode_options(self.options["compile_mode"]),
                   "freezing": bool(self.options["freezing"])}
        options.pop("triton.cudagraphs", None)  # graphs are captured here, around the whole model
        return torch.compile(module, options=options, dynamic=None if self.options["dynamic"] else False)

    def _build(self, artefact: Path, dev: torch.device) -> torch.nn.Module:
        """The checkpoint's model, strictly loaded, behind uint8 normalisation, cast and moved to `dev`."""
        torch = _torch()
        from omzoo.core.model import PixelInput, load_model

        dtype = self.dtype()
        channels_last = bool(self.options["channels_last"])
        model = load_model(self.spec, artefact).to(dtype)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        recipe = self.recipe
        return PixelInput(_cast_module(model, dtype, channels_last), recipe.mean, recipe.std).eval().to(dev)

    def load(self, artefact: Path, batch_size: int, spec: ModelSpec) -> None:
        self.spec = spec
        torch = _torch()
        t0 = time.perf_counter()
        dev = self.resolve_device()
        self.check_precision(self.precision)  # the artefact's, from its meta.json
        self.device, self.batch_size = dev, batch_size
        if self.options["threads"]:
            torch.set_num_threads(int(self.options["threads"]))
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
            torch.backends.cudnn.benchmark = True  # static shapes per artefact: pick the fastest algorithms once
            tf32 = bool(self.options["tf32"])
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
        fn: Callable[[torch.Tensor], torch.Tensor]
        if self.options["compile"]:
            key = self._cache_key(artefact, dev)
            if key not in _COMPILED:
                _COMPILED[key] = self._compile(self._build(artefact, dev))
            fn = _COMPILED[key]
        else:
            fn = self._build(artefact, dev)
        shape = (batch_size, *self.spec.input_size)
        self._graph = self._out = self._x = None
        if dev.type == "cuda":
            gen = torch.Generator(device=dev).manual_seed(0)
            self._x = torch.randint(0, 256, shape, dtype=torch.uint8, device=dev, generator=gen)  # never zeros
            if self.options["compile"] and self.options["dynamic"] and batch_size > 1:
                torch._dynamo.mark_dynamic(self._x, 0)
            self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            self._warm_and_capture(fn, self._use_graphs(dev))
        self._fn = fn
        self.setup_s = time.perf_counter() - t0

    def _warm_and_capture(self, fn: Callable[[torch.Tensor], torch.Tensor], graphs: bool) -> None:
        """Warm up on a side stream (PyTorch's capture recipe), then capture one graph with static buffers."""
        torch = _torch()
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(_WARMUP_CALLS):
                    fn(self._x)
            torch.cuda.current_stream().wait_stream(stream)
            torch.cuda.synchronize()
            if graphs:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self._out = fn(self._x)
                torch.cuda.synchronize()
                self._graph = graph

    # -- running -------------------------------------------------------------------------------------------
    def input_spec(self) -> tuple[tuple[int, ...], np.dtype]:
        return (self.batch_size, *self.spec.input_size), np.dtype(np.uint8)

    def feed(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype != np.uint8:
            raise TypeError(f"torch backend: feed() takes the shards' uint8 pixels, got {pixels.dtype}")
        return np.ascontiguousarray(pixels)

    def _check(self, batch: np.ndarray) -> None:
        shape, dtype = self.input_spec()
        if batch.shape != shape or batch.dtype != dtype:
            raise ValueError(f"torch backend: expected {dtype} {shape}, got {batch.dtype} {batch.shape} (use feed())")

    def _forward_device(self) -> torch.Tensor:
        """The compute part on the device-resident input: graph replay, or one call of the (compiled) model."""
        if self._graph is not None:
            self._graph.replay()
            return self._out
        return self._fn(self._x)

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = _torch()
        self._check(batch)
        with torch.inference_mode():
            if self._x is None:  # CPU: the numpy buffer is the input, no copy
                return self._fn(torch.from_numpy(batch)).numpy()
            self._x.copy_(torch.from_numpy(batch))
            return self._forward_device().cpu().numpy()

    def step(self, batch: np.ndarray) -> float | None:
        """e2e = host → device copy, model, device → host copy (the caller's wall clock); the return value is
        the compute part only: CUDA events around the model on the device-resident input, without the copies."""
        torch = _torch()
        self._check(batch)
        with torch.inference_mode():
            if self._x is None:
                t = time.perf_counter()
                self._fn(torch.from_numpy(batch))
                return (time.perf_counter() - t) * 1e3
            start, end = self._events
            self._x.copy_(torch.from_numpy(batch))
            start.record()
            out = self._forward_device()
            end.record()
            out.cpu()  # synchronises the stream, so both events have completed
            return start.elapsed_time(end)

    # -- provenance ----------------------------------------------------------------------------------------
    def toolkit_version(self) -> str:
        return _torch().__version__

    def accelerator(self) -> str | None:
        return "gpu" if (self.device or self.resolve_device()).type == "cuda" else None

    def host_checks(self, plan: HostPlan) -> list[Check]:
        """The version against the pin, the device the options resolve to (and whether CUDA is there), threads."""
        torch = _torch()
        checks = super().host_checks(plan)
        try:
            device = self.resolve_device()
        except (BackendUnavailable, ValueError) as exc:
            return [*checks, Check.failed(DEVICE, str(exc), "set torch.device (auto, cpu, cuda or cuda:N)")]
        if device.type == "cuda":
            where = f"{device} ({torch.cuda.get_device_name(device)})"
        else:
            where = f"{device} ({cpu_model()})" + ("" if torch.cuda.is_available() else f"; {_no_cuda(torch)}")
        threads = int(self.options["threads"] or torch.get_num_threads())
        return [*checks, Check.passed(DEVICE, where), threads_check(threads, "torch.threads")]

    def describe(self) -> dict[str, Any]:
        torch = _torch()
        dev = self.device or self.resolve_device()
        cuda = dev.type == "cuda"
        compiled = (f"{self.options['compile_mode']} freezing={int(bool(self.options['freezing']))} "
                    f"dynamic_batch={int(bool(self.options['dynamic']))}") if self.options["compile"] else "off"
        return self.described(
            runtime="torch", runtime_version=torch.__version__,
            device=f"{torch.cuda.get_device_name(dev)} ({dev})" if cuda else cpu_model(),
            precision=self.precision + (" tf32" if cuda and self.precision == "fp32" and self.options["tf32"] else ""),
            threads=f"torch={torch.get_num_threads()} interop={torch.get_num_interop_threads()}",
            cuda=str(torch.version.cuda or ""),
            cudnn=str(torch.backends.cudnn.version() or "") if cuda else "",
            driver=nvidia.driver_version() if cuda else "",
            channels_last=str(int(bool(self.options["channels_last"]))),
            compile=compiled,
            cuda_graphs=str(int(self._graph is not None if self._fn is not None else self._use_graphs(dev))),
            input="uint8 NCHW pixels; /255 and mean/std in float32 on the device",
            compute_interval=("CUDA events around the model on a device-resident input" if cuda
                              else "perf_counter around the model call"))

    def close(self) -> None:
        self._graph = self._out = self._x = self._fn = None
        torch = _torch()
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
