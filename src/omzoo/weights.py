"""The `weights` stage: the checkpoint every later stage reads, real or seeded-random.

With no published checkpoint configured, a newcomer still sees every stage work: we write seeded random
weights in the model's published container (omzoo.model.random_checkpoint), and every metric made from them
is marked `random_weights`. A published file is loaded strictly here first, so a wrong file fails at this
stage with the loader's message, not three stages later.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

from omzoo import paths
from omzoo.checkpoints import load_strict
from omzoo.io import atomic_write, sha256_file, write_json_atomic
from omzoo.model import random_checkpoint
from omzoo.params import load_params
from omzoo.zoo import ModelSpec

HELP = "write the model's checkpoint: verify and copy a published one, or write seeded random weights"


@dataclass(frozen=True)
class WeightsConfig:
    seed: int = 0  # seed of the random weights (used only where no checkpoint is configured)


def materialise(spec: ModelSpec, out: Path, checkpoint: Path | None, seed: int) -> dict[str, str | int]:
    """Write `out` (the pipeline's checkpoint) and return the provenance record for the info file."""
    if checkpoint:
        loaded = load_strict(spec.build(), checkpoint)
        with atomic_write(out) as tmp:
            shutil.copyfile(checkpoint, tmp)
        return {"model": spec.id, "weights": "published", "source": str(checkpoint), "container": loaded.container,
                "weights_only": int(loaded.weights_only), "sha256": sha256_file(out)}
    random_checkpoint(spec, out, seed)
    return {"model": spec.id, "weights": "random", "seed": seed, "container": spec.container,
            "sha256": sha256_file(out)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (e.g. models/pth/<model>.pth)")
    p.add_argument("--checkpoint", default="", help="published checkpoint to verify and copy; empty = random")
    p.add_argument("--info", type=Path, help="provenance JSON (default: <out>.json)")
    p.add_argument("--params", type=Path, default=paths.PARAMS)


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = params.typed(WeightsConfig, "weights")
    info = materialise(params.spec(args.model), args.out, Path(args.checkpoint) if args.checkpoint else None, cfg.seed)
    write_json_atomic(args.info or args.out.with_suffix(".json"), info)
    print(f"{args.model}: {info['weights']} weights -> {args.out}")
    return 0
