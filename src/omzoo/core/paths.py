"""Where every artefact and metrics file lives: the one place that spells the layout.

dvc.yaml cannot import Python, so it repeats these patterns; tests/test_paths.py renders dvc.yaml's stages
and checks that every path there is the one built here. Everything else (stages, report, compare, the
Makefile's helpers, tests) asks this module. Paths are relative to the repository root.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

SAMPLE = Path("data/sample")
PROCESSED = Path("data/processed")
MODELS = Path("models")
METRICS = Path("metrics")
REPORTS = Path("reports")
PARAMS = Path("params.yaml")
PREDICTIONS = "predictions.json"
TOOLKIT = METRICS / "toolkit.json"  # the installed toolkit's fingerprint (the toolkit stage)


def key(model: str, bs: int) -> str:
    """The name of one (model, batch size) point: `tresnet_m-8` (artefact directory, metrics file, stage item)."""
    if "-" in model:
        raise ValueError(f"model id {model!r} must not contain '-': it separates the model from the batch size")
    return f"{model}-{int(bs)}"


def parse_key(name: str) -> tuple[str, int] | None:
    """`tresnet_m-8` (or a path ending in `tresnet_m-8.json`) → ("tresnet_m", 8); None for anything else."""
    model, sep, bs = PurePosixPath(str(name).replace("\\", "/")).name.removesuffix(".json").rpartition("-")
    if not sep or not model or not bs.isdigit() or int(bs) < 1:
        return None
    return model, int(bs)


def shards(pixels: str) -> Path:
    return PROCESSED / pixels


def checkpoint(model: str) -> Path:
    return MODELS / "pth" / f"{model}.pth"


def weights_info(model: str) -> Path:
    return MODELS / "pth" / f"{model}.json"


def onnx(model: str) -> Path:
    return MODELS / "onnx" / f"{model}.onnx"


def simplified(model: str) -> Path:
    return MODELS / "onnx" / f"{model}.sim.onnx"


def compiled(model: str, bs: int) -> Path:
    return MODELS / "compiled" / key(model, bs)


def infer(model: str) -> Path:
    return MODELS / "infer" / model


def predictions(model: str) -> Path:
    """Per-image top-1 with the image names and labels (infer): what a comparison of two revisions reads."""
    return infer(model) / PREDICTIONS


def eval_metrics(model: str) -> Path:
    return METRICS / "eval" / f"{model}.json"


def eval_info(model: str) -> Path:
    return METRICS / "info" / "eval" / f"{model}.json"


def bench_metrics(model: str, bs: int) -> Path:
    return METRICS / "bench" / f"{key(model, bs)}.json"


def bench_info(model: str, bs: int) -> Path:
    return METRICS / "info" / "bench" / f"{key(model, bs)}.json"


def bench_rounds(model: str, bs: int) -> Path:
    """Per-round samples: committed beside the metrics, outside the numbers-only metrics directories."""
    return METRICS / "rounds" / f"{key(model, bs)}.json"


def metrics_kind(path: str) -> str | None:
    """"eval" or "bench" for a metrics file path as DVC prints it (`metrics/bench/m-8.json`), else None."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) >= 2 and parts[-2] in ("eval", "bench") and parts[-1].endswith(".json"):
        return parts[-2]
    return None
