"""The table `make bench BS=... [MODEL=...]` prints: this workspace's numbers at the given batch sizes next to the
published 310P and T4 figures (`omzoo report --bench-table`, and the sweep verb)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from omzoo.core import paths, zoo
from omzoo.core.metrics import fmt
from omzoo.core.params import Params
from omzoo.results.cells import CONTENDED_NOTE, failure, ratio, with_interval
from omzoo.results.collect import read_json


def matching_models(params: Params, pattern: str) -> list[str]:
    """The models of params.yaml whose id matches the glob `pattern` (`make bench MODEL=...`); none is an error."""
    models = [m for m in params.models if fnmatch.fnmatchcase(m, pattern)]
    if not models:
        raise ValueError(f"no model in params.yaml matches {pattern!r} (have: {', '.join(params.models)})")
    return models


def bench_table(params: Params, root: Path, sizes: list[int], pattern: str) -> str:
    """This workspace's numbers at the given batch sizes (each of `precisions:`) next to the published 310P and T4
    figures (the 310P's are atc's default, fp16)."""
    from tabulate import tabulate

    rows = []
    for m, bs, p in [(m, bs, p) for m in matching_models(params, pattern) for bs in sizes for p in params.precisions]:
        metrics = read_json(root / paths.bench_metrics(m, bs, p), "bench")
        info = read_json(root / paths.bench_info(m, bs, p))
        published = zoo.get(m).published_throughput
        ours = metrics.get("throughput_compute_ips")
        lat = metrics.get("e2e_ms", {})
        row: list[Any] = [paths.subject(m, p), bs, failure(metrics, info) or with_interval(metrics), fmt(metrics.get(
            "throughput_compute_cv"), 3), with_interval(metrics, "e2e"), fmt(lat.get("p50")), fmt(lat.get("p99"))]
        for platform in ("310P", "T4"):
            pub = published.get(platform, {}).get(bs)
            row += [fmt(pub, 1), ratio(ours, pub)]
        rows.append(row)
    table = tabulate(rows, ["model", "bs", "compute img/s [interval ≥ 95 %]", "cv", "e2e img/s [interval]", "p50 ms",
                            "p99 ms", "310P img/s", "ours/310P", "T4 img/s", "ours/T4"], tablefmt="github",
                     disable_numparse=True)
    return table + ("\n\n" + CONTENDED_NOTE if any("†" in str(r[2]) for r in rows) else "")
