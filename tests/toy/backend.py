"""A fourth backend, for tests only: ONNX Runtime behind another name, so every stage can be driven through a
backend the stages have never heard of."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.backends.base import Backend, CompileSource
from omzoo.backends.checks import DEVICE, Check, HostPlan
from omzoo.core.onnxgraph import input_info, ort_logits
from omzoo.core.recipe import normalize
from omzoo.core.zoo import ModelSpec


class ToyBackend(Backend):
    name = "toy"

    def toolkit_version(self) -> str:
        return "0.1.0"

    def compile(self, src: CompileSource, batch_size: int, out_dir: Path) -> Path:
        if src.onnx is None:
            raise ValueError("toy backend compiles from an ONNX file")
        artefact = out_dir / "toy.onnx"
        shutil.copyfile(src.onnx, artefact)
        return artefact

    def load(self, artefact: Path, batch_size: int, spec: ModelSpec) -> None:
        self.spec, self.artefact, self.batch_size = spec, artefact, batch_size
        self.dtype = input_info(artefact)[2]

    def input_spec(self) -> tuple[tuple[int, ...], np.dtype]:
        return (self.batch_size, *self.spec.input_size), self.dtype

    def feed(self, pixels: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(pixels) if self.dtype == np.uint8 else normalize(pixels, self.recipe)

    def run(self, batch: np.ndarray) -> np.ndarray:
        return ort_logits(self.artefact, batch)

    def host_checks(self, plan: HostPlan) -> list[Check]:
        """The default toolkit check, and two of its own: where `omzoo doctor` shows them, no backend is named."""
        return [*super().host_checks(plan), Check.passed("toyrt plugin", "toyrt_plugin 9.9 loaded"),
                Check.passed(DEVICE, "toy device")]

    def describe(self) -> dict[str, Any]:
        return self.described(runtime="toyrt", runtime_version=self.toolkit_version(), device="toy device",
                              precision="fp32", threads="1", toyrt_plugin_version="9.9")
