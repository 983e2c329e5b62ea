"""Fixtures shared across test files: the sample data set and one small compiled artefact that several modules'
tests run on."""

from __future__ import annotations

from pathlib import Path

import pytest

from omzoo.backends.artefact import compile_artefact
from omzoo.core import zoo
from omzoo.core.model import load_model, random_checkpoint
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
