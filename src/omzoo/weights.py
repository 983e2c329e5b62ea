"""The `weights` stage: the checkpoint every later stage reads, real or seeded-random.

With no published checkpoint configured, a newcomer still sees every stage work: we write seeded random
weights in the model's published container, with BatchNorm statistics calibrated and then perturbed (so a
wrong BN mapping changes the logits) and the classifier scaled to logit std ≈ 4, the regime the spec's
tolerances were measured in. Every metric made from them is marked `weights: random`.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Collection
from pathlib import Path

import numpy as np
import torch

from omzoo import zoo
from omzoo.checkpoints import file_sha256, load_strict, save_container
from omzoo.io import atomic_write, write_json_atomic
from omzoo.params import load_params

HELP = "write the model's checkpoint: verify and copy a published one, or write seeded random weights"

_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm)


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


def random_model(model_id: str, seed: int = 0, **options: object) -> torch.nn.Module:
    """The same random model for the same seed: construction and calibration are both seeded."""
    from omzoo.data.profiles import get_profile, normalize

    spec = zoo.get(model_id)
    torch.manual_seed(seed)
    model = spec.build(**options)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, *spec.input_size), dtype=np.uint8)
    return randomize(model, torch.from_numpy(normalize(pixels, get_profile(spec.profile))), seed)


def random_checkpoint(model_id: str, out: Path, seed: int = 0) -> None:
    save_container(random_model(model_id, seed).state_dict(), out, zoo.get(model_id).container)


def materialise(model_id: str, out: Path, checkpoint: str | None, seed: int, trust: bool = False,
                trusted_sha256: Collection[str] = ()) -> dict[str, str | int]:
    """Write `out` (the pipeline's checkpoint) and return the provenance record for the info file.

    A published file the safe unpickler reads is copied as is. One it refuses is read only if the user trusts
    it (`trust`, or its sha256 in `trusted_sha256`), and then only its tensors are written, as a plain state
    dict: every later stage reads `out` with the safe unpickler and needs no trust of its own.
    """
    spec = zoo.get(model_id)
    if checkpoint:
        src = Path(checkpoint)
        source_sha256 = file_sha256(src) if src.is_file() else ""
        loaded = load_strict(spec.build(), src, trust or source_sha256 in trusted_sha256)  # fail here, clearly
        if loaded.weights_only:
            with atomic_write(out) as tmp:
                shutil.copyfile(src, tmp)
        else:
            save_container(loaded.state_dict, out, "state_dict")
        return {"model": model_id, "weights": "published", "source": str(src), "source_sha256": source_sha256,
                "container": loaded.container, "trusted_pickle": int(not loaded.weights_only),
                "sha256": file_sha256(out)}
    random_checkpoint(model_id, out, seed)
    return {"model": model_id, "weights": "random", "seed": seed, "container": spec.container,
            "trusted_pickle": 0, "sha256": file_sha256(out)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (e.g. models/pth/<model>.pth)")
    p.add_argument("--checkpoint", default="", help="published checkpoint to verify and copy; empty = random")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="this file may run code: fully unpickle it if the safe unpickler refuses it (README Security)")
    p.add_argument("--params", type=Path,
                   help="params file whose weights.trusted_checkpoints (sha256 list) names the files you trust")
    p.add_argument("--info", type=Path, help="provenance JSON (default: <out>.json)")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params) if args.params else {}
    trusted = {str(h).lower() for h in (params.get("weights") or {}).get("trusted_checkpoints") or []}
    info = materialise(args.model, args.out, args.checkpoint or None, args.seed, args.trust_checkpoint, trusted)
    write_json_atomic(args.info or args.out.with_suffix(".json"), info)
    print(f"{args.model}: {info['weights']} weights -> {args.out}")
    return 0
