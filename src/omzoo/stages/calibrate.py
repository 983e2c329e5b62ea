"""The `calibrate` stage: the images and settings int8 is compiled with, chosen once per model.

`precision.calibration_images` of the model's own shard set, evenly spaced over it, stored as uint8 pixels with their
names beside the `precision:` section (omzoo.data.calibration). compile reads that folder, never the shards or the
section, so the fp32 and fp16 compiles (which do not calibrate) do not re-run when int8 settings change; a pipeline
without int8 writes the folder with no images, so a change of data re-runs no compile at all. The images are also
scored by evaluate (the evaluation set is the only labelled data the pipeline has); calibration.json names them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core.params import PrecisionConfig, load_params
from omzoo.data import calibration
from omzoo.data.shards import ShardSet

HELP = "choose the calibration images of a model's shards for int8 (with the quantization settings)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model id from the registry")
    p.add_argument("--shards", type=Path, required=True, help="the model's shard directory from `omzoo preprocess`")
    p.add_argument("--out", type=Path, required=True,
                   help=f"folder for {calibration.PIXELS} and {calibration.SETTINGS}")


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = params.typed(PrecisionConfig, "precision")
    wanted = [p for p in params.precisions if p in calibration.CALIBRATED]
    spec = params.spec(args.model)
    settings: dict[str, Any] = {"model": args.model, "precisions": wanted, "names": []}
    pixels = np.zeros((0, *spec.input_size), np.uint8)
    if wanted:
        shards = ShardSet(args.shards)
        if shards.pixels != spec.recipe.pixels:
            raise ValueError(f"{args.shards} holds {shards.pixels} pixels but {args.model} reads {spec.recipe.pixels}")
        if len(shards) == 0:
            raise ValueError(f"{args.shards}: no images to calibrate {args.model} with")
        index = calibration.choose(len(shards), cfg.calibration_images)
        pixels = np.stack([shards.read(i, i + 1)[0] for i in index])
        settings.update(names=[shards.names[i] for i in index], shards_hash=shards.hash,
                        quantization={**dataclasses.asdict(cfg), "calibration_images": len(index)})
    calibration.write(args.out, pixels, settings)
    print(f"{args.model}: {len(pixels)} calibration images"
          + (f" for {', '.join(wanted)}" if wanted else " (no precision calibrates)") + f" -> {args.out}")
    return 0
