"""The metrics and info files of this workspace that the report and `make bench` show, read for the models and
batch sizes params.yaml asks for (models x batch_sizes), never a directory glob: stale files of a shrunk sweep are
ignored and missing ones show as missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omzoo.core import paths
from omzoo.core.params import Params


def read_json(path: Path) -> dict[str, Any]:
    """A metrics or info file, or {} where its stage has not run (shown as missing, never as zero)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def collect(root: Path, params: Params) -> dict[str, Any]:
    """Everything the report shows, read under `root` for the models and batch sizes in params:
    {model: {"eval": metrics, "eval_info": info, "bench": {bs: (metrics, info)}}}."""
    out: dict[str, Any] = {}
    for m in params.models:
        bench = {bs: (read_json(root / paths.bench_metrics(m, bs)), read_json(root / paths.bench_info(m, bs)))
                 for bs in params.batch_sizes}
        out[m] = {"eval": read_json(root / paths.eval_metrics(m)), "eval_info": read_json(root / paths.eval_info(m)),
                  "bench": bench}
    return out
