"""The one interface every inference backend implements (MLPerf style: one class per runtime).

A backend turns a model (its ONNX file, or its checkpoint) into a compiled artefact for one batch size,
loads that artefact, and runs host batches through it. Concrete backends live in their own modules and
are imported only when asked for, so a missing runtime never breaks the others.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.zoo import ModelSpec

_BACKENDS = {
    "onnxruntime": ("omzoo.backends.onnxruntime", "OrtBackend"),
    "torch": ("omzoo.backends.torch", "TorchBackend"),
    "acl": ("omzoo.backends.acl", "AclBackend"),
}


class BackendUnavailable(RuntimeError):
    """The backend's runtime is not installed or cannot see its device; the message says what to do."""


class RestartInEnvironment(Exception):
    """Raised by load() before any work when the runtime reads its environment at process start (acl: the
    library path aclruntime loads with), so this process cannot host it. The `omzoo` CLI runs the same command
    again in a child process with `env`."""

    def __init__(self, message: str, env: dict[str, str]) -> None:
        super().__init__(message)
        self.env = env


@dataclass
class CompileSource:
    """Everything a backend may compile from. Backends take what they need and ignore the rest."""

    spec: ModelSpec
    onnx: Path | None = None  # the exported (and simplified) graph; float32 or uint8 input
    checkpoint: Path | None = None  # published-container checkpoint (torch backend)
    options: dict[str, Any] = field(default_factory=dict)  # this backend's params section


class Backend(ABC):
    """compile → load → run; plus describe() for provenance and step() for timing."""

    name: str = ""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})
        #: the registry entry of the loaded artefact (set by omzoo.compile.load_compiled before load())
        self.spec: ModelSpec | None = None

    @property
    def profile(self):
        """The preprocessing profile of the loaded model: how feed() turns pixels into inputs."""
        from omzoo.data.profiles import get_profile

        return get_profile(self.spec.profile)

    @abstractmethod
    def toolkit_version(self) -> str:
        """The installed runtime's version (CANN, onnxruntime, torch): what a toolkit branch pins."""

    @abstractmethod
    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        """Write the compiled artefact for `batch_size` into `out_dir`; return its main file."""

    @abstractmethod
    def load(self, artefact: Path, batch_size: int) -> None:
        """Load a compiled artefact for running batches of `batch_size`."""

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
        Backends with a device override this to time only the compute part (BENCHMARKING.md R1).
        """
        t = time.perf_counter()
        self.run(batch)
        return (time.perf_counter() - t) * 1e3

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Provenance strings: backend, runtime versions, device, precision, threads."""

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
