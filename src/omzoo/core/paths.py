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
#: written by the toolkit stage once params.yaml passed validation, its content constant: every dvc.yaml stage that
#: pastes a params name into its command depends on it, so DVC validates params before any shell sees a name
PARAMS_CHECKED = METRICS / "params.json"


REFERENCE = "fp32"  # the precision the others are measured against (params.REFERENCE), and the one of old layouts


def key(model: str, bs: int, precision: str = REFERENCE) -> str:
    """The name of one (model, batch size, precision) point: `tresnet_m-8-fp32` (artefact directory, metrics file,
    stage item: DVC names a matrix item by its values joined with '-')."""
    if "-" in model:
        raise ValueError(f"model id {model!r} must not contain '-': it separates the model from the batch size")
    return f"{model}-{int(bs)}-{precision}"


def parse_key(name: str) -> tuple[str, int, str] | None:
    """`tresnet_m-8-int8` (or a path ending in `tresnet_m-8-int8.json`) → ("tresnet_m", 8, "int8"); the layout before
    precisions, `tresnet_m-8`, is fp32; None for anything else."""
    parts = PurePosixPath(str(name).replace("\\", "/")).name.removesuffix(".json").split("-")
    if len(parts) == 2:
        parts.append(REFERENCE)
    if len(parts) != 3 or not all(parts) or not parts[1].isdigit() or int(parts[1]) < 1 or not parts[2].isalnum():
        return None
    return parts[0], int(parts[1]), parts[2]


def subject(model: str, precision: str = REFERENCE) -> str:
    """A model at a precision, as comparisons name it: `tresnet_m` at fp32 (as before precisions), `tresnet_m int8`."""
    return model if precision == REFERENCE else f"{model} {precision}"


def parse_subject(name: str) -> tuple[str, str]:
    """The inverse of `subject`: (model, precision)."""
    model, _, precision = name.partition(" ")
    return model, precision or REFERENCE


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


def calibration(model: str) -> Path:
    """The calibration images and quantization settings int8 is compiled with (the calibrate stage)."""
    return MODELS / "calibration" / model


def compiled_root(model: str) -> Path:
    """Every compiled artefact of one model (what its infer stage depends on)."""
    return MODELS / "compiled" / model


def compiled(model: str, bs: int, precision: str = REFERENCE) -> Path:
    return compiled_root(model) / key(model, bs, precision)


def infer(model: str) -> Path:
    """Every precision's logits of one model, one sub-folder each (the infer stage)."""
    return MODELS / "infer" / model


def inferred(model: str, precision: str = REFERENCE) -> Path:
    return infer(model) / precision


def holder(path: str | Path) -> str:
    """The DVC output that holds a tracked file (what `dvc fetch` is given): a model's infer folder for its
    predictions, else the file's folder."""
    p = PurePosixPath(str(path).replace("\\", "/"))
    return str(PurePosixPath(*p.parts[:3]) if p.parts[:2] == ("models", "infer") and len(p.parts) > 3 else p.parent)


def predictions(model: str, precision: str = REFERENCE) -> Path:
    """Per-image top-1 with the image names and labels (infer): what a comparison of two revisions reads."""
    return inferred(model, precision) / PREDICTIONS


def eval_dir(model: str) -> Path:
    """One metrics file per precision of one model (the evaluate stage)."""
    return METRICS / "eval" / model


def eval_info_dir(model: str) -> Path:
    return METRICS / "info" / "eval" / model


def eval_metrics(model: str, precision: str = REFERENCE) -> Path:
    return eval_dir(model) / f"{precision}.json"


def eval_info(model: str, precision: str = REFERENCE) -> Path:
    return eval_info_dir(model) / f"{precision}.json"


def bench_metrics(model: str, bs: int, precision: str = REFERENCE) -> Path:
    return METRICS / "bench" / f"{key(model, bs, precision)}.json"


def bench_info(model: str, bs: int, precision: str = REFERENCE) -> Path:
    return METRICS / "info" / "bench" / f"{key(model, bs, precision)}.json"


def bench_rounds(model: str, bs: int, precision: str = REFERENCE) -> Path:
    """Per-round samples: committed beside the metrics, outside the numbers-only metrics directories."""
    return METRICS / "rounds" / f"{key(model, bs, precision)}.json"


def legacy(path: str | Path) -> str | None:
    """Where a revision from before the precision axis kept an fp32 file of this layout (`metrics/eval/m/fp32.json`
    was `metrics/eval/m.json`, `models/infer/m/fp32/predictions.json` was `models/infer/m/predictions.json`,
    `models/compiled/m/m-8-fp32` was `models/compiled/m-8`); None for a path that has no older name. Readers of
    another revision try it when the path itself is absent there, so an older BASE still compares."""
    p = PurePosixPath(str(path).replace("\\", "/"))
    suffix = f"-{REFERENCE}"
    if p.parts[:2] == ("models", "infer") and len(p.parts) == 5 and p.parts[3] == REFERENCE:
        return str(PurePosixPath(*p.parts[:3], *p.parts[4:]))
    if p.parts[:2] == ("models", "compiled") and len(p.parts) == 4 and p.name.endswith(suffix):
        return str(PurePosixPath(*p.parts[:2], p.name.removesuffix(suffix)))
    if p.parts[0] == "metrics" and p.name == f"{REFERENCE}.json" and "eval" in p.parts[1:-2]:
        return str(p.parent.with_suffix(".json"))
    if p.parts[0] == "metrics" and p.stem.endswith(suffix) and p.suffix == ".json":
        return str(p.with_name(p.stem.removesuffix(suffix) + ".json"))
    return None


def metrics_kind(path: str) -> str | None:
    """"eval" or "bench" for a metrics file path as DVC prints it (`metrics/bench/m-8-fp32.json`,
    `metrics/eval/m/fp32.json`, and the layout before precisions, `metrics/eval/m.json`), else None."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if not parts or not parts[-1].endswith(".json"):
        return None
    if len(parts) >= 2 and parts[-2] in ("eval", "bench"):
        return parts[-2]
    return "eval" if len(parts) >= 3 and parts[-3] == "eval" else None


def eval_point(path: str) -> tuple[str, str]:
    """(model, precision) of an eval metrics file path: `metrics/eval/m/int8.json`, or `metrics/eval/m.json` (fp32)."""
    p = PurePosixPath(path.replace("\\", "/"))
    return (p.stem, REFERENCE) if p.parent.name == "eval" else (p.parent.name, p.stem)
