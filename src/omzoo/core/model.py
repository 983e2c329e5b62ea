"""Models as PyTorch modules: build from the registry, load strictly, wrap for uint8 input, or make random.

The weights stage, export, the torch backend and predict all build and load a model here, so a checkpoint is
read the same way everywhere and a branch's `models.<id>.options` reach every one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omzoo.core.checkpoints import load_strict, save_container
from omzoo.core.recipe import normalize
from omzoo.core.zoo import ModelSpec

_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)


class PixelInput(torch.nn.Module):
    """uint8 pixels in, the model's logits out: x/255, then (x - mean) / std, all in float32.

    The same arithmetic, in the same order, as omzoo.core.recipe.normalize, so a uint8-input graph gives the
    same numbers as the float32 graph fed normalised pixels.
    """

    def __init__(self, model: torch.nn.Module, mean: tuple[float, ...] | None, std: tuple[float, ...] | None):
        super().__init__()
        self.model = model
        self.normalise = mean is not None
        if self.normalise:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 255.0
        if self.normalise:
            x = (x - self.mean) / self.std
        return self.model(x)


def load_model(spec: ModelSpec, checkpoint: Path, trust: bool = False) -> torch.nn.Module:
    """Build the architecture with the entry's options (see ModelSpec.with_options) and load strictly; `trust`
    lets a file the safe unpickler refuses be fully unpickled (the user's explicit choice)."""
    model = spec.build()
    load_strict(model, checkpoint, trust)
    return model


@torch.no_grad()
def randomize(model: torch.nn.Module, x: torch.Tensor, seed: int = 0, logit_std: float = 4.0) -> torch.nn.Module:
    """Calibrate and perturb a freshly built model so it is well-conditioned with non-trivial BN stats.

    `x` is a calibration batch drawn like the model's real inputs (normalised random pixels), so the
    logit scale holds for the inputs the pipeline and the tests feed.
    """
    torch.manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:  # cumulative average over the calibration pass = that batch's statistics
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    model(x)
    model.eval()
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    for m in model.modules():
        if isinstance(m, _NORMS) and m.weight is not None:
            m.weight.mul_(torch.empty_like(m.weight).uniform_(0.6, 1.0))  # < 1: residual sums stay bounded
            m.bias.add_(torch.randn_like(m.bias) * 0.05)
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.add_(torch.randn_like(m.running_mean) * 0.05)
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.25))
    # Deep random networks give nearly the same logits for every image; centring the classifier on the
    # calibration batch keeps the part that depends on the input, then it is scaled to `logit_std`.
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    head.bias.sub_(model(x).mean(0))
    std = float(model(x).std())
    if std > 0:
        head.weight.mul_(logit_std / std)
        head.bias.mul_(logit_std / std)
    return model


def random_model(spec: ModelSpec, seed: int = 0) -> torch.nn.Module:
    """The same random model for the same seed: construction and calibration are both seeded."""
    torch.manual_seed(seed)
    model = spec.build()
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, *spec.input_size), dtype=np.uint8)
    return randomize(model, torch.from_numpy(normalize(pixels, spec.recipe)), seed)


def random_checkpoint(spec: ModelSpec, out: Path, seed: int = 0) -> None:
    """Seeded random weights written in the model's published container format."""
    save_container(random_model(spec, seed).state_dict(), out, spec.container)
