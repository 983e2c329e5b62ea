"""What does int8 buy on this CPU, and what does it cost? int8 against fp32 in interleaved pairs, beside their
agreement, per model and batch size, in one run.

Every registry model (seeded random weights, uint8 ONNX, ONNX Runtime CPU, as bench_stability and bench_abtest build
them) at bs 1 and 8, by default. Per point two artefacts, compiled in a temporary work dir with the onnxruntime
backend (omzoo.backends.artefact.compile_artefact): fp32, and int8 calibrated on a calibration folder written here
(omzoo.data.calibration) with params.yaml's `precision:` defaults (omzoo.core.params.PrecisionConfig). Then:
- speed: abtest's paired method (omzoo.timing.pairs.run_pairs, one worker process per side, bench's warm-up and
  round rules): HEAD = int8, BASE = fp32, a fixed number of pairs (one look); printed: the median int8/fp32 ratio of
  compute throughput with its sign-test interval, and e2e's;
- agreement: both artefacts run over the same images; top-1 agreement of int8 with fp32, top-5 overlap,
  max |Δlogit| (omzoo.core.metrics.agreement).
Images (for calibration and agreement) are the model's sample shards under data/processed/<pixels> when `make repro`
has written them, else seeded random uint8 images; the output says which. Calibration takes
precision.calibration_images of them, evenly spaced (the calibrate stage's choice); agreement takes the first
--images (the calibration images among them, as in the pipeline, where calibration comes from the evaluation set).
With random weights, agreement is a property of the quantization on a random network, not of the published one.

`--variants` also measures, at one model and bs 1 (--variants-model), the formats and options that may pay on this
CPU, each as its own int8 artefact paired against fp32: QOperator vs QDQ, U8U8 / U8S8 vs S8S8 (activations,
weights), per-tensor vs per-channel, reduce_range on and off (the default, auto, resolves from the CPU's VNNI flags).

    .venv/bin/python benchmarks/bench_precision.py [--model M ...] [--bs 1 8] [--pairs 10] [--images 128] [--variants]

Duration (2 cores, a quiet machine), measured: about 10 minutes for the default run (five models at bs 1 and 8, 10
pairs of rounds of at least 1 s and 5 iterations each, plus the int8 calibrations and the agreement images per
point), about 4.5 more for --variants at scnet50_v1d (12 min 52 s both together; 22 min on a loaded machine).
`--model ran92_cifar10 --bs 1 --pairs 3 --images 16 --min-s 0.2` is a one-minute smoke run (with --variants
--variants-model ran92_cifar10: about 5 minutes).
Results: benchmarks/results/precision-cpu.txt and .json (every number: settings, precision records, every pair).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_stability import build
from tabulate import tabulate

from omzoo.backends.artefact import compile_artefact, load_compiled, read_meta
from omzoo.backends.base import pad_batch
from omzoo.backends.onnxruntime.quantize import VNNI_FLAGS, cpu_flags
from omzoo.core import paths, zoo
from omzoo.core.io import write_bytes_atomic, write_json_atomic
from omzoo.core.metrics import agreement
from omzoo.core.params import AbtestConfig, BenchConfig, PrecisionConfig
from omzoo.core.provenance import cpu_model, usable_cores
from omzoo.data import calibration
from omzoo.data.shards import ShardSet
from omzoo.timing import worker
from omzoo.timing.pairs import Launch, PairedRun, Worker, launch_env, run_pairs

SRC = Path(worker.__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results"
SIZES = (1, 8)
#: `--variants`: each an int8 artefact made with params.yaml's `precision:` defaults changed by these fields
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "QOperator": {"quant_format": "QOperator"},
    "QOperator U8S8": {"quant_format": "QOperator", "activations": "uint8"},
    "U8S8": {"activations": "uint8"},
    "U8U8": {"activations": "uint8", "weights": "uint8"},
    "per-tensor": {"per_channel": False},
    "reduce_range on": {"reduce_range": True},
    "reduce_range off": {"reduce_range": False},
}


def images(model: str, n: int, data: Path, seed: int = 0) -> tuple[np.ndarray, str, ShardSet | None]:
    """The model's sample shards (all of them, for calibration and agreement), or `n` seeded random uint8 images."""
    spec = zoo.get(model)
    root = data / spec.recipe.pixels
    if (root / "manifest.json").is_file():
        shards = ShardSet(root)
        if tuple(shards.shape) == tuple(spec.input_size) and len(shards):
            return shards.read(0, len(shards)), f"sample shards {root} ({len(shards)} images)", shards
    pixels = np.random.default_rng([seed, spec.input_size[1]]).integers(0, 256, (n, *spec.input_size), np.uint8)
    return pixels, f"seeded random uint8 images (seed {seed}; no shards under {root})", None


def calibration_folder(work: Path, model: str, pixels: np.ndarray, names: list[str], variant: str,
                       options: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """A calibration folder as the calibrate stage writes it: evenly spaced images and the quantization settings."""
    quantization = {**asdict(PrecisionConfig()), **options}
    chosen = calibration.choose(len(pixels), int(quantization["calibration_images"]))
    folder = work / "calibration" / f"{model}-{_slug(variant)}"
    settings = {"model": model, "precisions": ["int8"], "names": [names[i] for i in chosen],
                "quantization": quantization}
    calibration.write(folder, pixels[chosen], settings)
    return folder, settings


def int8_artefact(work: Path, model: str, bs: int, folder: Path, variant: str, source: str) -> Path:
    """The int8 artefact of one variant (cached in `work` while its calibration images are the same kind)."""
    kind = "shards" if source.startswith("sample") else "random"
    art = work / f"{paths.key(model, bs, 'int8')}-{_slug(variant)}-{kind}"
    if not (art / "meta.json").is_file():
        build(work, model, bs)  # the uint8 ONNX export (random weights) both artefacts are compiled from
        compile_artefact(zoo.get(model), bs, art, "onnxruntime", {}, onnx=work / f"{model}.onnx", precision="int8",
                         calibration=folder)
    return art


def logits(art: Path, pixels: np.ndarray) -> np.ndarray:
    """The artefact's logits on `pixels`, in order (a short last batch padded, its padded rows dropped)."""
    backend, meta = load_compiled(art)
    bs = int(meta["batch_size"])
    try:
        out = []
        for start in range(0, len(pixels), bs):
            batch, n = pad_batch(pixels[start:start + bs], bs)
            out.append(np.asarray(backend.run(backend.feed(batch)), np.float32)[:n])
    finally:
        backend.close()
    return np.concatenate(out)


def paired(work: Path, arts: dict[str, Path], bench: BenchConfig, pairs: int, key: str) -> PairedRun:
    """`pairs` pairs of rounds, HEAD (int8) and BASE (fp32) in a seeded random order inside each, one look."""
    cfg = AbtestConfig()
    cfg = replace(cfg, min_pairs=pairs, look_every=pairs, max_pairs=pairs, max_s=max(cfg.max_s, 60.0 * pairs))
    ws = {s: Worker(Launch(s, sys.executable, work, launch_env(SRC), work / "logs" / f"{s}.log"))
          for s in ("base", "head")}
    try:
        for s, w in ws.items():
            w.start()
            w.load(arts[s], bench)
        return run_pairs(ws, cfg, key, progress=False)
    finally:
        for w in ws.values():
            w.close()


def one_point(work: Path, model: str, bs: int, variant: str, options: dict[str, Any], bench: BenchConfig,
              pairs: int, n_images: int, data: Path) -> dict[str, Any]:
    start = time.monotonic()
    pixels, source, shards = images(model, n_images, data)
    names = shards.names if shards is not None else [f"random-{i:05d}" for i in range(len(pixels))]
    folder, settings = calibration_folder(work, model, pixels, names, variant, options)
    arts = {"base": build(work, model, bs), "head": int8_artefact(work, model, bs, folder, variant, source)}
    compiled_s = time.monotonic() - start
    subset = pixels[:n_images]
    same = agreement(logits(arts["head"], subset), logits(arts["base"], subset))
    changed = same.pop("changed")
    run = paired(work, arts, bench, pairs, f"{model}-{bs}-{variant}")
    ratio = {}
    for metric in ("throughput_compute_ips", "throughput_e2e_ips"):
        iv = run.interval(metric)
        ratio[metric] = {"median": iv.median, "low": iv.low, "high": iv.high}
    sides = {s: {m: float(np.median([getattr(p, s)[m] for p in run.pairs]))
                 for m in ("throughput_compute_ips", "throughput_e2e_ips")} for s in ("base", "head")}
    return {"model": model, "bs": bs, "variant": variant, "options": options, "quantization": settings["quantization"],
            "precision_record": read_meta(arts["head"]).get("precision_record", {}), "images": source,
            "calibration_images": len(settings["names"]), "agreement_images": len(subset),
            "agreement": {**{k: 100 * v if k in ("top1", "top5") else v for k, v in same.items()},
                          "changed": len(changed), "changed_images": [names[i] for i in changed]},
            "fp32": sides["base"], "int8": sides["head"], "ratio": ratio, "pairs": len(run.pairs),
            "coverage": run.coverage, "stopped": run.stopped, "remeasured": len(run.remeasured),
            "loaded_pairs": sum(p.loaded for p in run.pairs),
            "pair_ratios": run.ratios("throughput_compute_ips").tolist(),
            "rounds": [{"first": p.first, "base": p.base, "head": p.head} for p in run.pairs],
            "compile_s": compiled_s, "measure_s": run.elapsed_s, "s": time.monotonic() - start}


def _slug(variant: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in variant.lower())


def _interval(r: dict[str, float]) -> str:
    return f"{r['median']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"


def _record(r: dict[str, Any]) -> str:
    p = r["precision_record"]
    short = {"int8": "S8", "uint8": "U8"}
    return (f"{p.get('quant_format', '?')} {short.get(p.get('activations'), '?')}{short.get(p.get('weights'), '?')} "
            f"{'per-channel' if p.get('per_channel') else 'per-tensor'} rr={'on' if p.get('reduce_range') else 'off'}")


def table_row(r: dict[str, Any]) -> list[Any]:
    a = r["agreement"]
    return [r["model"], r["bs"], r["variant"], _record(r), f"{r['fp32']['throughput_compute_ips']:.1f}",
            f"{r['int8']['throughput_compute_ips']:.1f}", _interval(r["ratio"]["throughput_compute_ips"]),
            _interval(r["ratio"]["throughput_e2e_ips"]), f"{a['top1']:.2f}", f"{a['top5']:.2f}",
            f"{a['max_abs_dlogit']:.3g}", f"{a['changed']}/{r['agreement_images']}", r["pairs"],
            f"{r['coverage']:.3f}", f"{r['s']:.0f}"]


HEADERS = ["model", "bs", "variant", "int8 made as", "fp32 img/s", "int8 img/s", "int8/fp32 compute [interval]",
           "int8/fp32 e2e [interval]", "top-1 agree %", "top-5 overlap %", r"max \|Δlogit\|", "changed", "pairs",
           "coverage", "s"]


def _line(r: dict[str, Any]) -> str:
    a = r["agreement"]
    return (f"{r['model']:>20} bs{r['bs']:<2} {r['variant']:>16}: int8/fp32 "
            f"{_interval(r['ratio']['throughput_compute_ips'])} ({r['pairs']} pairs), top-1 agreement "
            f"{a['top1']:.2f} % on {r['agreement_images']} images ({r['s']:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=list(zoo.REGISTRY), help="default: every registry model")
    ap.add_argument("--bs", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--pairs", type=int, default=10, help="pairs of rounds per point (one look)")
    ap.add_argument("--images", type=int, default=128, help="images both artefacts run for the agreement")
    ap.add_argument("--min-s", type=float, default=BenchConfig().min_s, help="seconds per round (bench.min_s)")
    ap.add_argument("--variants", action="store_true", help="also: int8 formats and options at one model, bs 1")
    ap.add_argument("--variants-model", default="scnet50_v1d")
    ap.add_argument("--data", type=Path, default=paths.PROCESSED, help="where the sample shards are (make repro)")
    ap.add_argument("--dir", type=Path, default=Path(".cache/bench-precision"))
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of precision-cpu.txt and .json")
    args = ap.parse_args(argv)
    work = args.dir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    bench = replace(BenchConfig(), min_s=args.min_s)
    load_before, started = os.getloadavg()[0], time.monotonic()
    points = [(m, bs, "default") for m in args.model for bs in args.bs]
    if args.variants:
        points += [(args.variants_model, 1, v) for v in VARIANTS if (args.variants_model, 1, v) not in points]
    rows = []
    for model, bs, variant in points:
        rows.append(one_point(work, model, bs, variant, VARIANTS[variant], bench, args.pairs, args.images,
                              args.data.absolute()))
        print(_line(rows[-1]), flush=True)
    import onnxruntime

    flags = cpu_flags()
    vnni = [f for f in VNNI_FLAGS if f in flags]
    header = (f"bench-precision on {cpu_model()} ({usable_cores()} usable cores; AVX2 "
              f"{'yes' if 'avx2' in flags else 'no'}, VNNI {', '.join(vnni) if vnni else 'no'}), onnxruntime "
              f"{onnxruntime.__version__}; HEAD = int8, BASE = fp32, {args.pairs} pairs of {args.min_s:g} s rounds per "
              f"point (abtest's paired method, one look), random weights; 1-minute load average {load_before:.1f} "
              f"before, {os.getloadavg()[0]:.1f} after; {time.monotonic() - started:.0f} s in all")
    sources = sorted({f"{r['model']}: {r['images']}" for r in rows})
    text = "\n".join([header, "", "Images (calibration and agreement): " + "; ".join(sources), "",
                      tabulate([table_row(r) for r in rows], HEADERS, tablefmt="github", disable_numparse=True), "",
                      "int8/fp32: the median of the pair ratios int8/fp32 (throughput, higher = int8 faster) with its "
                      "sign-test interval; coverage: that interval's confidence. Agreement: int8's logits against "
                      "fp32's on the same images (random weights: a property of the quantization on a random "
                      "network)."])
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "precision-cpu.txt", (text + "\n").encode())
    write_json_atomic(args.out / "precision-cpu.json", {
        "cpu": cpu_model(), "usable_cores": usable_cores(), "cpu_flags": {"avx2": "avx2" in flags, "vnni": vnni},
        "onnxruntime": onnxruntime.__version__, "bench": asdict(bench), "pairs": args.pairs, "images": args.images,
        "load_average": [load_before, os.getloadavg()[0]], "elapsed_s": time.monotonic() - started, "rows": rows})


if __name__ == "__main__":
    main()
