"""The `weights` stage: the checkpoint every later stage reads, real or seeded-random.

With no published checkpoint configured, a newcomer still sees every stage work: we write seeded random
weights in the model's published container (omzoo.core.model.random_checkpoint), and every metric made from them
is marked `random_weights`. A published file is loaded strictly here first, so a wrong file fails at this
stage with the loader's message, not three stages later; a file the safe unpickler refuses is read only when
the user trusts it (README "Security").
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Collection
from pathlib import Path

from omzoo.core.checkpoints import load_strict, save_container
from omzoo.core.io import atomic_files, atomic_write, json_bytes, sha256_file
from omzoo.core.model import random_checkpoint
from omzoo.core.params import WeightsConfig, load_params
from omzoo.core.zoo import ModelSpec

HELP = "write the model's checkpoint: verify and copy a published one, or write seeded random weights"
#: --info defaults to <out>.json (the CLI fills it in before it checks the outputs)
INFO_BESIDE_OUT = True


def materialise(spec: ModelSpec, out: Path, checkpoint: Path | None, seed: int, trust: bool = False,
                trusted_sha256: Collection[str] = ()) -> dict[str, str | int]:
    """Write `out` (the pipeline's checkpoint) and return the provenance record for the info file.

    A published file the safe unpickler reads is copied as is. One it refuses is read only if the user trusts
    it (`trust`, or its sha256 in `trusted_sha256`), and then only its tensors are written, as a plain state
    dict: every later stage reads `out` with the safe unpickler and needs no trust of its own.
    """
    if checkpoint:
        source_sha256 = sha256_file(checkpoint) if checkpoint.is_file() else ""
        loaded = load_strict(spec.build(), checkpoint, trust or source_sha256 in trusted_sha256)
        if loaded.weights_only:
            with atomic_write(out) as tmp:
                shutil.copyfile(checkpoint, tmp)
        else:
            save_container(loaded.state_dict, out, "state_dict")
        return {"model": spec.id, "weights": "published", "source": str(checkpoint), "source_sha256": source_sha256,
                "container": loaded.container, "trusted_pickle": int(not loaded.weights_only),
                "sha256": sha256_file(out)}
    random_checkpoint(spec, out, seed)
    return {"model": spec.id, "weights": "random", "seed": seed, "container": spec.container, "trusted_pickle": 0,
            "sha256": sha256_file(out)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write (e.g. models/pth/<model>.pth)")
    p.add_argument("--checkpoint", help="published checkpoint to verify and copy; \"\" = random weights "
                   "(default: params.yaml models.<model>.checkpoint)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="this file may run code: fully unpickle it if the safe unpickler refuses it (README Security)")
    p.add_argument("--info", type=Path, help="provenance JSON (default: <out>.json)")


def complete(args: argparse.Namespace) -> None:
    """--checkpoint from params.yaml's `models.<model>.checkpoint` where it is not given (the pipeline's way: a path
    pasted into dvc.yaml's command would be read by a shell), as a Path, or None for random weights."""
    text = args.checkpoint
    if text is None:
        text = load_params(args.params).models.get(args.model, {}).get("checkpoint") or ""
    args.checkpoint = Path(text) if text else None


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = params.typed(WeightsConfig, "weights")
    trusted = {str(h).lower() for h in cfg.trusted_checkpoints}
    with atomic_files([args.out, args.info]) as (out, info_file):  # both or neither
        info = materialise(params.spec(args.model), out, args.checkpoint, cfg.seed, args.trust_checkpoint, trusted)
        info_file.write_bytes(json_bytes(info))
    print(f"{args.model}: {info['weights']} weights -> {args.out}")
    return 0
