"""Fixtures shared across test files: the sample data set, one small compiled artefact, every registry model with
seeded random weights and its ONNX exports, and a host that shows no Ascend install whatever this machine has."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fake_cann import isolate_host

from omzoo.backends.artefact import compile_artefact
from omzoo.core import zoo
from omzoo.core.checkpoints import save_container
from omzoo.core.model import load_model, random_checkpoint, random_model
from omzoo.core.recipe import normalize
from omzoo.data.sample import write_sample
from omzoo.stages.export import export_onnx

MODEL = "ran92_cifar10"


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample data set (`omzoo sample-data`): ImageNet-style JPEGs and a CIFAR-10 batch; read only."""
    out = tmp_path_factory.mktemp("sample") / "sample"
    write_sample(out)
    return out


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RAN-92 (random weights, seed 2) exported with uint8 input and compiled for ONNX Runtime at bs 4:
    w.pth, m.onnx and the artefact directory c4 under the returned folder."""
    d = tmp_path_factory.mktemp("compiled")
    spec = zoo.get(MODEL)
    random_checkpoint(spec, d / "w.pth", seed=2)
    export_onnx(load_model(spec, d / "w.pth"), spec, d / "m.onnx", input_dtype="uint8")
    compile_artefact(spec, 4, d / "c4", "onnxruntime", {"threads": 2}, onnx=d / "m.onnx", checkpoint=d / "w.pth")
    return d


@pytest.fixture(scope="session")
def branches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The fake pipeline's git+DVC repository with two toolkit branches (dvc_helpers.toolkit_branches), built once
    for the compare, plots and summary tests; main checked out."""
    from dvc_helpers import toolkit_branches

    return toolkit_branches(tmp_path_factory.mktemp("branches"))


@pytest.fixture
def venv_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real Ascend install, driver or npu-smi is visible; a project venv is first on PATH (fake_cann.isolate_host).
    Returns the venv's bin directory. The Ascend tests take it for every test: `pytest.mark.usefixtures`."""
    return isolate_host(monkeypatch, tmp_path)


@dataclass(frozen=True)
class Published:
    """A registry model with seeded random weights, as a user meets it: the checkpoint in its published container,
    two images' pixels, their normalised input and torch's logits on it."""

    spec: zoo.ModelSpec
    model: torch.nn.Module
    checkpoint: Path
    pixels: np.ndarray
    x: np.ndarray
    logits: np.ndarray


@pytest.fixture(scope="session", params=list(zoo.REGISTRY))
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Each registry model in turn (built once for every test file that checks it)."""
    spec = zoo.get(request.param)
    model = random_model(spec, seed=1)
    path = tmp_path_factory.mktemp(spec.id) / spec.checkpoint_file
    save_container(model.state_dict(), path, spec.container)
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, *spec.input_size), dtype=np.uint8)
    x = normalize(pixels, spec.recipe)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    return Published(spec, model, path, pixels, x, logits)


@dataclass(frozen=True)
class Exported:
    """`published` exported by omzoo.stages.export: the float32 and the uint8 graph and export's summaries."""

    published: Published
    float32: Path
    uint8: Path
    summaries: dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def exported(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    d = tmp_path_factory.mktemp(f"{published.spec.id}-onnx")
    summaries = {dtype: export_onnx(published.model, published.spec, d / f"{dtype}.onnx", input_dtype=dtype)
                 for dtype in ("float32", "uint8")}
    return Exported(published, d / "float32.onnx", d / "uint8.onnx", summaries)
