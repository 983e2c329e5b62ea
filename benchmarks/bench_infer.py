"""Does the infer runner starve the device? infer-stage throughput vs pure bench throughput, one run.

Both measure the same compiled artefact at the same batch size: `bench` feeds one resident random batch
in a tight loop; `infer` reads uint8 shards, pads, feeds and collects logits (with its prefetch thread).
Target: infer / bench >= 0.90.

    .venv/bin/python benchmarks/bench_infer.py [--model tresnet_m] [--bs 8] [--images 64]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tabulate import tabulate

from omzoo.backends.artefact import compile_artefact, load_compiled
from omzoo.backends.base import run_shards
from omzoo.core import zoo
from omzoo.core.model import load_model, random_checkpoint
from omzoo.data.preprocess import preprocess
from omzoo.data.shards import ShardSet
from omzoo.stages.export import export_onnx
from omzoo.timing.measure import BenchConfig, benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tresnet_m", choices=list(zoo.REGISTRY))
    p.add_argument("--bs", type=int, default=8)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--min-s", type=float, default=10.0, help="bench: minimum timed duration")
    args = p.parse_args()
    spec = zoo.get(args.model)
    _, h, w = spec.input_size
    with tempfile.TemporaryDirectory(prefix="omzoo-bench-infer-") as t:
        tmp = Path(t)
        rng = np.random.default_rng(0)
        (tmp / "img").mkdir()
        side = 256 if h > 32 else 32
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(tmp / "img" / f"{i:05d}.png")
        preprocess(spec.recipe, tmp / "img", None, tmp / "shards", workers=None)
        random_checkpoint(spec, tmp / "w.pth")
        export_onnx(load_model(spec, tmp / "w.pth"), spec, tmp / "m.onnx", input_dtype="uint8")
        compile_artefact(spec, args.bs, tmp / "c", "onnxruntime", {}, onnx=tmp / "m.onnx")
        backend, meta = load_compiled(tmp / "c")
        shards = ShardSet(tmp / "shards")
        run_shards(backend, shards, args.bs)  # warm-up pass
        _, timing = run_shards(backend, shards, args.bs)
        pure, _ = benchmark(backend, args.bs, BenchConfig(warmup_iters=2, warmup_s=0.5, min_iters=10, min_s=args.min_s))
        backend.close()
    infer_ips, bench_ips = timing["throughput_ips"], pure["throughput_e2e_ips"]
    print(f"infer loop: {timing['wall_s']:.2f} s wall, {timing['run_s']:.2f} s inside backend.run")
    print(tabulate([[args.model, "onnxruntime", args.bs, args.images, f"{infer_ips:.1f}", f"{bench_ips:.1f}",
                     f"{infer_ips / bench_ips:.3f}"]],
                   ["model", "backend", "bs", "images", "infer img/s", "bench img/s", "infer/bench (target >= 0.90)"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
