"""The metrics and info files of this workspace that the report and `make bench` show, read for the models and
batch sizes and precisions params.yaml asks for (models x batch_sizes x precisions), never a directory glob: stale
files of a shrunk sweep are ignored and missing ones show as missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omzoo.core import io, metrics, paths
from omzoo.core.metrics import Stage
from omzoo.core.params import REFERENCE, Params


def read_json(path: Path, stage: Stage | None = None) -> dict[str, Any]:
    """A metrics or info file, or {} where its stage has not run (shown as missing, never as zero). A corrupt one
    (not JSON, NaN, not a mapping) fails naming the file (io.read_json), never as a bare parse error; a metrics file
    (`stage` given) also where a value is not what its metric can be (metrics.checked: the file and the key)."""
    if not path.exists() and not path.is_symlink():
        return {}
    data = io.read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a JSON {type(data).__name__}, not the mapping of a metrics or info file")
    return metrics.checked(stage, data, str(path)) if stage else data


def collect(root: Path, params: Params) -> dict[str, Any]:
    """Everything the report shows, read under `root` for the models, batch sizes and precisions in params:
    {model: {"precisions": {precision: {"eval": metrics, "eval_info": info, "bench": {bs: (metrics, info)}}}}},
    and beside "precisions" fp32's own "eval", "eval_info" and "bench" (what the tables of one precision show)."""
    out: dict[str, Any] = {}
    for m in params.models:
        per = {p: {"eval": read_json(root / paths.eval_metrics(m, p), "eval"),
                   "eval_info": read_json(root / paths.eval_info(m, p)),
                   "bench": {bs: (read_json(root / paths.bench_metrics(m, bs, p), "bench"),
                                  read_json(root / paths.bench_info(m, bs, p))) for bs in params.batch_sizes}}
               for p in params.precisions}
        out[m] = {**per[REFERENCE], "precisions": per}
    return out
