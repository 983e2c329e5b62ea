"""The one interface every inference backend implements (MLPerf style: one class per runtime).

A backend turns a model (its ONNX file, or its checkpoint) into a compiled artefact for one batch size,
loads that artefact, and runs host batches through it. Concrete backends live in their own modules and
are imported only when asked for, so a missing runtime never breaks the others. A new backend is one module
and one line in `_BACKENDS`: stages, timing and report only ever call this interface. It carries everything that
differs between runtimes: `describe()` (the same keys for every backend), `host_checks()` (what `omzoo doctor`
prints), and the accelerator's other processes and state (`device_processes()`, `device_state()`), which the bench
records.
"""

from __future__ import annotations

import importlib
import sys
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from tqdm import tqdm

from omzoo.backends.checks import Check, HostPlan, toolkit_check
from omzoo.core.params import REFERENCE, backend_options
from omzoo.core.provenance import cpu_model, fingerprint_hash, read_fingerprint, usable_cores
from omzoo.core.recipe import Recipe
from omzoo.core.zoo import ModelSpec

if TYPE_CHECKING:
    from omzoo.data.shards import ShardSet

_BACKENDS = {
    "onnxruntime": ("omzoo.backends.onnxruntime", "OrtBackend"),
    "torch": ("omzoo.backends.torch", "TorchBackend"),
    "acl": ("omzoo.backends.ascend.acl", "AclBackend"),
}


#: What describe() returns, for every backend: the provenance bench and report show without naming a backend.
DESCRIBE_KEYS = ("backend", "runtime", "runtime_version", "device", "precision", "threads", "extra")


@dataclass(frozen=True)
class DeviceProcess:
    """A process holding an accelerator, as its tool lists it; memory in MiB (npu-smi labels it MB), None if unsaid."""

    device: str  # "gpu" (nvidia-smi's compute-apps query does not say which) or "npu:<id>"
    pid: int
    memory_mb: float | None
    name: str = ""


@dataclass
class CompileSource:
    """Everything a backend may compile from. Backends take what they need and ignore the rest."""

    spec: ModelSpec  # with the branch's model options applied
    onnx: Path | None = None  # the exported (and simplified) graph; float32 or uint8 input
    checkpoint: Path | None = None  # published-container checkpoint (torch backend)
    options: dict[str, Any] = field(default_factory=dict)  # this backend's params section
    precision: str = "fp32"  # one of params.PRECISIONS; the backend checked it (Backend.check_precision)
    #: uint8 NCHW pixels of the model's calibration images (the calibrate stage), for int8; empty for the others
    calibration: np.ndarray | None = None
    quantization: dict[str, Any] = field(default_factory=dict)  # `precision:` (params.PrecisionConfig), for int8


class Backend(ABC):
    """compile → load → run; plus describe() for provenance and step() for timing."""

    name: str = ""
    #: this backend's params.yaml section as a dataclass: its keys, their types and the one home of their defaults
    #: (omzoo.core.params.BACKEND_SECTIONS holds it, so that every command checks it on load)
    Options: ClassVar[type | None] = None
    #: the keys of describe()'s `extra` that name the installed toolkit (providers, a CUDA build, a CANN root)
    FINGERPRINT_EXTRA: ClassVar[tuple[str, ...]] = ()
    #: the precisions (params.PRECISIONS) this backend can compile at all; check_precision() adds the host's limits
    PRECISIONS: ClassVar[tuple[str, ...]] = ("fp32",)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        #: the section with every default filled in; an unknown, moved or mistyped key fails here, naming it
        self.options: dict[str, Any] = backend_options(self.name, self.Options, options or {}, self.name)
        #: the registry entry of the loaded artefact, options applied (given to load())
        self.spec: ModelSpec | None = None
        #: what compile() makes and load() runs: set from the stage (compile) or the artefact's meta.json (load)
        self.precision = "fp32"

    @property
    def recipe(self) -> Recipe:
        """The loaded model's preprocessing recipe: how feed() turns pixels into inputs."""
        if self.spec is None:
            raise RuntimeError(f"{self.name}: load() first")
        return self.spec.recipe

    def check_precision(self, precision: str) -> None:
        """ValueError, one line naming backend and precision, when `precision` cannot run as configured here.

        Default: the precisions this backend compiles at all (PRECISIONS). A backend whose precision depends on the
        device (fp16 on CUDA only) overrides it and calls this first.
        """
        if precision not in self.PRECISIONS:
            raise ValueError(f"backend {self.name} cannot run precision {precision!r}; it runs "
                             f"{', '.join(self.PRECISIONS)} (remove it from `precisions:` in params.yaml)")

    def precision_record(self) -> dict[str, Any]:
        """How this artefact's precision was made, for meta.json and the info files: at least {"precision": ...};
        a backend adds its own flag (atc's --precision_mode) or its quantization settings."""
        return {"precision": self.precision}

    @abstractmethod
    def toolkit_version(self) -> str:
        """The installed runtime's version (CANN, onnxruntime, torch): what a toolkit branch pins."""

    @abstractmethod
    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        """Write the compiled artefact for `batch_size` into `out_dir`; return its main file."""

    @abstractmethod
    def load(self, artefact: Path, batch_size: int, spec: ModelSpec) -> None:
        """Load a compiled artefact of model `spec` for running batches of `batch_size`."""

    @abstractmethod
    def input_spec(self) -> tuple[tuple[int, ...], np.dtype]:
        """Shape (with the loaded batch size) and dtype of what run() takes, after feed()."""

    @abstractmethod
    def feed(self, pixels: np.ndarray) -> np.ndarray:
        """Turn uint8 NCHW pixels from the shards into this artefact's input (dtype, layout, scaling)."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (host array in, float32 logits on the host out)."""

    def step(self, batch: np.ndarray) -> float | None:
        """One synchronised timed iteration on `batch`; return the compute-only time in ms.

        Default: the whole run() call, which is right for runtimes without device copies (ORT CPU).
        Backends with a device override this to time only the compute part, without the host/device copies.
        """
        t = time.perf_counter()
        self.run(batch)
        return (time.perf_counter() - t) * 1e3

    def accelerator(self) -> str | None:
        """"gpu" or "npu" when the loaded artefact runs on one (the bench checks what else is on it), else None."""
        return None

    def device_processes(self) -> list[DeviceProcess]:
        """Every process the accelerator's tool lists on it, this one included; [] on a CPU or without the tool."""
        return []

    def device_state(self) -> dict[str, str]:
        """The accelerator's state now (name, utilisation, memory in use) as info-file fields; {} where unknown."""
        return {}

    def host_checks(self, plan: HostPlan) -> list[Check]:
        """Can this host run the backend as configured? One Check per thing to verify, each failing one with its fix.

        Default: the toolkit pin only. A runtime that is not installed may raise ImportError or BackendUnavailable;
        doctor reports that as one failing line.
        """
        return [toolkit_check(self.toolkit_version(), plan.toolkit_version, self.pin_fix(plan.toolkit_version))]

    def pin_fix(self, expected: str) -> str:
        """How to get the pinned runtime when the installed one differs (the toolkit check's fix)."""
        return f"install {self.name} {expected} or check out the branch for {self.toolkit_version()}"

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance with exactly DESCRIBE_KEYS (build it with `described`); backend-specific strings in extra."""

    def described(self, *, runtime: str, runtime_version: str, device: str, precision: str, threads: str,
                  **extra: str) -> dict[str, Any]:
        """describe()'s fixed shape: the common fields, everything else under `extra` as strings."""
        return {"backend": self.name, "runtime": runtime, "runtime_version": runtime_version, "device": device,
                "precision": precision, "threads": threads, "extra": {k: str(v) for k, v in extra.items()}}

    def fingerprint(self) -> dict[str, str]:
        """The installed toolkit on this host, as the toolkit stage records it (compile, infer and bench depend on
        it): describe()'s fixed fields and FINGERPRINT_EXTRA, the host's CPU and usable cores. Nothing that varies
        from run to run, so its hash changes only when the toolkit or the host does. The version is
        toolkit_version()'s: a host without the runtime fails here, never records "unknown". Its precision is the
        reference's (fp32) whatever this backend is set to: the toolkit is the same for every precision of the axis,
        so one branch's results carry one fingerprint."""
        precision, self.precision = self.precision, REFERENCE
        try:
            d = self.describe()
        finally:
            self.precision = precision
        return {**{k: str(d[k]) for k in DESCRIBE_KEYS if k != "extra"}, "runtime_version": self.toolkit_version(),
                **{k: str(d["extra"][k]) for k in self.FINGERPRINT_EXTRA}, "cpu": cpu_model(),
                "cores": str(usable_cores())}

    def checked_fingerprint(self, recorded: Path | None = None) -> str:
        """This host's fingerprint hash, for a result to carry; with `recorded` (the toolkit stage's file), a
        ValueError when that file names another toolkit: it changed since the toolkit stage ran, so the result
        would carry the wrong one."""
        fingerprint = self.fingerprint()
        mine = fingerprint_hash(fingerprint)
        if recorded is not None:
            theirs, was = read_fingerprint(recorded)
            if theirs != mine:
                changed = ", ".join(f"{k} {was.get(k, '-')!r} -> {v!r}" for k, v in fingerprint.items()
                                    if was.get(k) != v) or "its keys"
                raise ValueError(f"{recorded}: names toolkit {theirs} but this host now has {mine} ({changed}); run "
                                 "`dvc repro` (its toolkit stage records the new one, then everything that "
                                 "depends on it runs again)")
        return mine

    def close(self) -> None:  # noqa: B027 - optional hook; most runtimes free on garbage collection
        """Release device resources."""


def get_backend(name: str, options: dict[str, Any] | None = None) -> Backend:
    """Instantiate a backend by name, importing its module only now."""
    try:
        module_name, cls_name = _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(_BACKENDS)}") from None
    return getattr(importlib.import_module(module_name), cls_name)(options)


def backend_names() -> list[str]:
    return sorted(_BACKENDS)



def pad_batch(x: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """Pad a short last batch to `batch_size` by repeating its last row; return it and the real count.

    The padded rows' outputs are trimmed by the caller, so nothing is ever truncated (the sMLP guide's
    dropped-last-batch trap) and static-shape artefacts always get the shape they were compiled for.
    """
    n = x.shape[0]
    if n > batch_size:
        raise ValueError(f"batch of {n} rows is larger than the batch size {batch_size}")
    if n == batch_size:
        return x, n
    if n == 0:
        raise ValueError("cannot pad an empty batch")
    pad = np.repeat(x[-1:], batch_size - n, axis=0)
    return np.concatenate([x, pad], axis=0), n


def run_shards(backend: Backend, shards: ShardSet, batch_size: int,
               progress: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Logits for every image of `shards`, in dataset order, plus timing of the loop (images/s, run-only time).

    The last short batch is padded and its padded rows dropped, so every image is scored exactly once (never the
    sMLP guide's truncation). While the backend runs batch k, batch k+1 is read and fed on a second thread.
    A progress bar on stderr (like preprocess's) shows a 50,000-image run is moving; `progress=False` hides it.
    """
    def prepare(pixels: np.ndarray) -> tuple[np.ndarray, int]:
        padded, n = pad_batch(pixels, batch_size)
        return backend.feed(padded), n

    outputs: list[np.ndarray] = []
    run_s = 0.0
    batches = shards.iter_batches(batch_size)
    label = backend.spec.id if backend.spec is not None else backend.name
    start = time.perf_counter()
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        tqdm(total=len(shards), desc=f"infer {label}", unit="img", file=sys.stderr, disable=not progress,
             dynamic_ncols=True) as bar,
    ):
        pending = next((pool.submit(prepare, b) for b in batches), None)
        while pending is not None:
            x, n = pending.result()
            pending = next((pool.submit(prepare, b) for b in batches), None)
            t = time.perf_counter()
            out = backend.run(x)
            run_s += time.perf_counter() - t
            outputs.append(np.asarray(out, dtype=np.float32)[:n])
            bar.update(n)
    wall_s = time.perf_counter() - start
    logits = np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)
    if logits.shape[0] != len(shards):
        raise RuntimeError(f"{shards.root}: scored {logits.shape[0]} images of {len(shards)}")
    timing = {"n_images": len(shards), "batch_size": batch_size, "wall_s": wall_s, "run_s": run_s,
              "throughput_ips": len(shards) / wall_s if wall_s > 0 else 0.0}
    return logits, timing
