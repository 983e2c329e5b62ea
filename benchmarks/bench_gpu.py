"""Benchmark: omzoo's torch backend vs plain eager fp16 and a torch.compile + channels_last + CUDA graphs baseline.

    PYTHONPATH=src python3 benchmarks/bench_gpu.py [--models a,b] [--batch-sizes 1,8,32,64,128,256] [--min-s 1]
                                              [--json OUT] [--budget-s S] [--c-options JSON] [--c-precision P]

All five registry models with seeded random weights (omzoo.core.model.random_model), every batch size, three
variants side by side in one process:
- (a) eager: ``model.half().cuda()``, NCHW, fp16 input already normalised;
- (b) baseline: the same fp16 model in channels_last under ``torch.compile(mode="reduce-overhead")`` (Inductor
  + CUDA graphs), channels_last fp16 input: the usual "compile it" recipe;
- (c) omzoo: ``TorchBackend`` through its own compile()/load() from a checkpoint file, fp16, with its best
  settings (uint8 input normalised on the device, channels_last, Inductor with freezing, one CUDA graph
  per batch size with static buffers).
Every point is timed by omzoo.timing.measure.timed_loop: the returned compute ms are CUDA events around the model on a
device-resident input; the loop's wall time per step is e2e (host array → device → model → host logits).
Throughput = 1000·bs / mean(compute ms), the ais_bench / ModelZoo-T4 formula (docs/benchmarking.md R1).
cudnn.benchmark is on for all three (as timm's benchmark does), TF32 off.

On a machine without CUDA it runs (a) and (c) in fp32 on the CPU and prints which variants it skipped:
a smoke test of the script, not a measurement.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from omzoo.backends.base import CompileSource
from omzoo.backends.torch import TorchBackend, clear_compiled_cache
from omzoo.core import zoo
from omzoo.core.checkpoints import save_container
from omzoo.core.metrics import latency_stats
from omzoo.core.model import random_model
from omzoo.core.onnxgraph import random_input
from omzoo.core.params import batch_size_list
from omzoo.core.recipe import normalize
from omzoo.timing.measure import BenchConfig, timed_loop

#: H100 SXM5 dense (no sparsity) fp16/bf16 tensor-core peak, NVIDIA's datasheet (1979 TFLOP/s is with sparsity).
PEAK_FP16_TFLOPS = 989.4
#: What we accept for fp16 against CPU fp32 at logit std ≈ 4: docs/models.md §0.4 measured up to 0.62 max |Δ| with
#: one top-1 flip, and asks for a tolerance plus top-5 overlap rather than argmax equality.
FP16_MAX_ABS, FP16_TOP5_MIN = 1.0, 0.9
FIDELITY_BS = 32
C_BEST = {"channels_last": True, "compile": True, "compile_mode": "default", "freezing": True, "dynamic": True,
          "cuda_graphs": True}
#: the precision of the omzoo variant on CUDA (the pipeline's axis, not a backend option); fp32 on the CPU
C_PRECISION = "fp16"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(zoo.REGISTRY), help="comma-separated registry ids")
    p.add_argument("--batch-sizes", default="1,8,32,64,128,256")
    p.add_argument("--min-s", type=float, default=1.0, help="timed seconds per point (and at least 10 iterations)")
    p.add_argument("--variants", default="a,b,c")
    p.add_argument("--c-options", default="{}", help="JSON overriding the omzoo variant's backend options")
    p.add_argument("--c-precision", default=C_PRECISION, help="the omzoo variant's precision on CUDA (fp16, bf16, "
                   "fp32); always fp32 on the CPU")
    p.add_argument("--budget-s", type=float, default=0.0, help="skip the remaining points after this many seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="write all numbers here (rewritten after every model)")
    p.add_argument("--from-json", type=Path, help="print the tables of an earlier run's --json and exit")
    return p.parse_args(argv)


class Sweep:
    """One process, one device: runs the points, keeps the records, enforces the time budget."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cuda = torch.cuda.is_available()
        self.dev = torch.device("cuda" if self.cuda else "cpu")
        self.dtype = torch.float16 if self.cuda else torch.float32
        self.t0 = time.perf_counter()
        self.points: list[dict[str, Any]] = []
        self.fidelity: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.cfg = BenchConfig(warmup_iters=5, warmup_s=min(0.3, args.min_s), min_iters=10, min_s=args.min_s,
                               max_s=max(10.0, 3 * args.min_s), seed=args.seed)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.c_options = {**C_BEST, **json.loads(args.c_options)}
        self.c_precision = args.c_precision
        if not self.cuda:
            self.c_options.update(compile=False, cuda_graphs=False)
            self.c_precision = "fp32"
        self.c_options["device"] = str(self.dev)

    def over_budget(self) -> bool:
        return bool(self.args.budget_s) and time.perf_counter() - self.t0 > self.args.budget_s

    def note(self, text: str) -> None:
        print(f"NOTE: {text}", flush=True)
        self.notes.append(text)

    def measure(self, model_id: str, variant: str, bs: int, step, setup_s: float) -> None:
        """timed_loop over `step` (which returns compute ms); one record per point."""
        r = timed_loop(step, self.cfg)
        compute, e2e = r["compute"], r["e2e"]
        rec = {"model": model_id, "variant": variant, "bs": bs, "iters": int(e2e.size),
               "compute_ips": 1000.0 * bs / compute.mean(), "e2e_ips": bs * e2e.size / (e2e.sum() / 1e3),
               "compute_ms": latency_stats(compute), "e2e_ms": latency_stats(e2e), "setup_s": setup_s}
        self.points.append(rec)
        print(f"  {model_id} {variant} bs{bs}: {rec['compute_ips']:9.1f} img/s compute, {rec['e2e_ips']:9.1f} e2e, "
              f"p50 {rec['compute_ms']['p50']:.3f} ms, setup {setup_s:.1f} s, {rec['iters']} iters "
              f"[{time.perf_counter() - self.t0:.0f} s]", flush=True)

    # -- the three variants --------------------------------------------------------------------------------
    def host_input(self, spec: zoo.ModelSpec, bs: int) -> np.ndarray:
        """The same seeded pixels every variant gets, normalised on the host for (a) and (b)."""
        pixels = random_input((bs, *spec.input_size), np.dtype(np.uint8), self.args.seed)
        return normalize(pixels, spec.recipe).astype(np.float16 if self.cuda else np.float32)

    def torch_step(self, fn, x_host: np.ndarray, channels_last: bool):
        """R1 for plain PyTorch: from_numpy → .to(dev) → model → .cpu(); events around the model only."""
        if not self.cuda:
            def cpu_step() -> float:
                x = torch.from_numpy(x_host)
                t = time.perf_counter()
                fn(x)
                return (time.perf_counter() - t) * 1e3
            return cpu_step
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        fmt = torch.channels_last if channels_last else torch.contiguous_format

        def step() -> float:
            x = torch.from_numpy(x_host).to(self.dev).contiguous(memory_format=fmt)
            start.record()
            out = fn(x)
            end.record()
            out.cpu()
            return start.elapsed_time(end)
        return step

    def run_plain(self, spec: zoo.ModelSpec, model: torch.nn.Module, variant: str, sizes: list[int]) -> None:
        compiled = variant == "b"
        m = copy.deepcopy(model).to(self.dev, self.dtype).eval()
        if compiled:
            m = torch.compile(m.to(memory_format=torch.channels_last), mode="reduce-overhead")
        with torch.no_grad():
            for bs in sizes:
                if self.over_budget():
                    self.note(f"{spec.id} {variant} bs{bs}: skipped, over --budget-s")
                    continue
                step = self.torch_step(m, self.host_input(spec, bs), channels_last=compiled)
                t = time.perf_counter()
                for _ in range(3):  # compilation and graph recording happen here, outside the numbers
                    step()
                self.measure(spec.id, variant, bs, step, time.perf_counter() - t)
        del m
        self.release()

    def omzoo_backend(self, spec: zoo.ModelSpec, ckpt: Path, bs: int, work: Path) -> TorchBackend:
        """(c) through the backend's own compile()/load(), exactly as the DVC stages run it."""
        backend = TorchBackend(self.c_options)
        backend.precision = self.c_precision  # as the compile stage and load_compiled set it
        art = backend.compile(CompileSource(spec=spec, checkpoint=ckpt, options=self.c_options,
                                            precision=self.c_precision), bs, work / f"bs{bs}")
        backend.load(art, bs, spec)
        return backend

    def run_omzoo(self, spec: zoo.ModelSpec, ckpt: Path, sizes: list[int], work: Path) -> None:
        for bs in sizes:
            if self.over_budget():
                self.note(f"{spec.id} c bs{bs}: skipped, over --budget-s")
                continue
            backend = self.omzoo_backend(spec, ckpt, bs, work)
            x = backend.feed(random_input((bs, *spec.input_size), np.dtype(np.uint8), self.args.seed))
            self.measure(spec.id, "c", bs, lambda b=backend, x=x: b.step(x), backend.setup_s)
            backend.close()

    def run_fidelity(self, spec: zoo.ModelSpec, model: torch.nn.Module, ckpt: Path, work: Path) -> None:
        """(c) and (a) in fp16 against CPU fp32 on a seeded batch of normalised random pixels (docs/models.md §0.4)."""
        pixels = random_input((FIDELITY_BS, *spec.input_size), np.dtype(np.uint8), self.args.seed + 1)
        x32 = torch.from_numpy(normalize(pixels, spec.recipe))
        with torch.inference_mode():
            ref = model(x32).numpy()
        backend = self.omzoo_backend(spec, ckpt, FIDELITY_BS, work)
        rows = {"c": backend.run(backend.feed(pixels))}
        backend.close()
        if self.cuda:
            m = copy.deepcopy(model).to(self.dev, self.dtype).eval()
            with torch.inference_mode():
                rows["a"] = m(x32.to(self.dev, self.dtype)).float().cpu().numpy()
            del m
        self.fidelity[spec.id] = {v: compare(out, ref) for v, out in rows.items()}
        self.fidelity[spec.id]["precision"] = self.c_precision

    def release(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()

    def run_model(self, model_id: str, sizes: list[int], variants: list[str]) -> None:
        spec = zoo.get(model_id)
        print(f"== {model_id} [{time.perf_counter() - self.t0:.0f} s]", flush=True)
        model = random_model(spec, self.args.seed)
        with tempfile.TemporaryDirectory(prefix=f"bench-gpu-{model_id}-") as tmp:
            work = Path(tmp)
            ckpt = work / spec.checkpoint_file
            save_container(model.state_dict(), ckpt, spec.container)
            for variant in variants:
                if variant == "b" and not self.cuda:
                    self.note(f"{model_id}: variant b (torch.compile + CUDA graphs, fp16) needs CUDA; skipped")
                    continue
                torch._dynamo.reset()  # each variant compiles from a clean Dynamo state (no shared recompiles)
                if variant == "c":
                    self.run_omzoo(spec, ckpt, sizes, work)
                else:
                    self.run_plain(spec, model, variant, sizes)
            if "c" in variants and not self.over_budget():
                self.run_fidelity(spec, model, ckpt, work)
        clear_compiled_cache()
        torch._dynamo.reset()
        self.release()

    # -- output --------------------------------------------------------------------------------------------
    def ips(self, model_id: str, variant: str, bs: int) -> float | None:
        for p in self.points:
            if (p["model"], p["variant"], p["bs"]) == (model_id, variant, bs):
                return p["compute_ips"]
        return None

    def e2e(self, model_id: str, variant: str, bs: int) -> float | None:
        for p in self.points:
            if (p["model"], p["variant"], p["bs"]) == (model_id, variant, bs):
                return p["e2e_ips"]
        return None

    def util(self, model_id: str, ips: float | None) -> float | None:
        if ips is None or not self.cuda:
            return None
        return 100.0 * ips * zoo.get(model_id).flops / (PEAK_FP16_TFLOPS * 1e12)

    def model_table(self, model_id: str, sizes: list[int]) -> str:
        rows = []
        for bs in sizes:
            a, b, c = (self.ips(model_id, v, bs) for v in "abc")
            best = max((v for v in (a, b, c) if v is not None), default=None)
            rows.append([bs, a, b, c, ratio(c, a), ratio(c, b), self.e2e(model_id, "a", bs),
                         self.e2e(model_id, "b", bs), self.e2e(model_id, "c", bs), self.util(model_id, best)])
        head = ["bs", "a eager", "b compile+CL+graphs", "c omzoo", "c/a", "c/b", "a e2e", "b e2e", "c e2e",
                "FLOP util % (best)"]
        return tabulate(rows, head, floatfmt=".1f", missingval="-")

    def summary(self, models: list[str], sizes: list[int]) -> str:
        rows = []
        for model_id in models:
            cs = [(self.ips(model_id, "c", bs), bs) for bs in sizes if self.ips(model_id, "c", bs) is not None]
            bs = max(cs)[1] if cs else None
            a, b, c = ((self.ips(model_id, v, bs) if bs else None) for v in "abc")
            best_b = max((self.ips(model_id, "b", s) or 0.0 for s in sizes), default=0.0) or None
            best = max((v for v in (a, b, c) if v is not None), default=None)
            fid = self.fidelity.get(model_id, {}).get("c", {})
            rows.append([model_id, bs, a, b, c, ratio(c, a), ratio(c, b), ratio(c, best_b), self.util(model_id, best),
                         fid.get("max_abs"), fid.get("top1_agree"), fid.get("top5_overlap")])
        head = ["model", "best bs (c)", "a", "b", "c", "c/a", "c/b", "c/max(b)", "FLOP util %", "c max|Δ| vs fp32",
                "top-1 agree", "top-5 overlap"]
        return tabulate(rows, head, floatfmt=".3g", missingval="-")

    def fidelity_lines(self) -> list[str]:
        lines = []
        for model_id, fid in self.fidelity.items():
            parts = []
            for v in ("c", "a"):
                if v in fid:
                    f = fid[v]
                    ok = f["max_abs"] <= FP16_MAX_ABS and f["top5_overlap"] >= FP16_TOP5_MIN
                    parts.append(f"{v}: max|Δlogit| {f['max_abs']:.3g}, top-1 agree {f['top1_agree']:.3f}, "
                                 f"top-5 overlap {f['top5_overlap']:.3f} {'OK' if ok else 'OUT OF TOLERANCE'}")
            lines.append(f"fidelity {model_id} ({fid['precision']} vs CPU fp32, {FIDELITY_BS} imgs): "
                         + "; ".join(parts))
        return lines

    def environment(self) -> dict[str, Any]:
        env = {"torch": torch.__version__, "cuda": torch.version.cuda or "", "device": "cpu",
               "python": sys.version.split()[0], "cpu_count": os.cpu_count(), "min_s": self.args.min_s,
               "c_options": self.c_options, "c_precision": self.c_precision,
               "peak_fp16_tflops": PEAK_FP16_TFLOPS if self.cuda else None}
        if self.cuda:
            env.update(device=torch.cuda.get_device_name(), cudnn=torch.backends.cudnn.version())
        return env

    def dump(self, path: Path | None) -> None:
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"environment": self.environment(), "points": self.points,
                                        "fidelity": self.fidelity, "notes": self.notes}, indent=1, default=float))


def ratio(x: float | None, y: float | None) -> float | None:
    return x / y if x is not None and y else None


def compare(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """max |Δlogit|, top-1 agreement and mean top-5 overlap (|top5 ∩ top5_ref| / 5) per image."""
    top5, ref5 = np.argsort(-out, 1)[:, :5], np.argsort(-ref, 1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5, ref5, strict=True)])
    return {"max_abs": float(np.abs(out - ref).max()), "top1_agree": float(np.mean(top5[:, 0] == ref5[:, 0])),
            "top5_overlap": float(overlap)}


def report(sweep: Sweep, env: dict[str, Any], models: list[str], sizes: list[int]) -> None:
    print()
    print("Throughput, img/s = 1000·bs / mean(compute ms), CUDA events around the model on a device-resident input;")
    print("e2e = bs·iters / wall (host array in, host logits out). a = eager fp16 NCHW; b = torch.compile")
    print("reduce-overhead + channels_last (CUDA graphs); c = omzoo TorchBackend", env["c_options"])
    print(f"FLOP util = img/s x 2·MACs (docs/models.md) / {PEAK_FP16_TFLOPS} TFLOP/s (H100 SXM dense fp16 peak), "
          "best variant at that bs.")
    print(f"torch {env['torch']}, CUDA {env['cuda'] or '-'}, {env['device']}, min {env['min_s']} s per point")
    for model_id in models:
        print(f"\n{model_id} ({zoo.get(model_id).macs / 1e9:.3f} GMACs/img)")
        print(sweep.model_table(model_id, sizes))
    print("\nSummary at omzoo's best batch size (c/max(b): against the baseline's best over all batch sizes)")
    print(sweep.summary(models, sizes))
    for line in sweep.fidelity_lines():
        print(line)
    for note in sweep.notes:
        print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    sizes = batch_size_list(args.batch_sizes, "--batch-sizes")
    variants = [v for v in args.variants.split(",") if v]
    sweep = Sweep(args)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        sweep.points, sweep.fidelity, sweep.notes = saved["points"], saved["fidelity"], saved["notes"]
        sweep.cuda = saved["environment"]["device"] != "cpu"
        models = list(dict.fromkeys(p["model"] for p in sweep.points))
        sizes = sorted({p["bs"] for p in sweep.points})
        report(sweep, saved["environment"], models, sizes)
        return 0
    env = sweep.environment()
    print(f"torch {env['torch']} cuda {env['cuda'] or '-'} on {env['device']}; omzoo options (c): {sweep.c_options}")
    if not sweep.cuda:
        sweep.note("no CUDA: (a) and (c) run in fp32 on the CPU, (b) is skipped; a smoke test, not a measurement")
    elif "H100" not in env["device"]:
        sweep.note(f"FLOP utilisation uses the H100 SXM peak ({PEAK_FP16_TFLOPS} TFLOP/s) but this is {env['device']}")
    for model_id in models:
        sweep.run_model(model_id, sizes, variants)
        sweep.dump(args.json)
    report(sweep, env, models, sizes)
    print(f"total {time.perf_counter() - sweep.t0:.0f} s")
    sweep.dump(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
