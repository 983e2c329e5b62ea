"""What `dvc metrics diff` and `dvc params diff` report between two revisions, checked and sorted here.

DVC exits 0 when it fails to load a revision's metrics and does not sort its rows (docs/dvc.md §5), so a
revision that contributed no number is a warning, and the rows come back in schema order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from omzoo.core import metrics, paths
from omzoo.core.metrics import number
from omzoo.results.revisions import dvc_json
from omzoo.results.rules import ACCURACY, TIMED


@dataclass(frozen=True)
class Row:
    """One compared number; None where a revision lacks it (not measured, failed, or not a number)."""

    model: str
    kind: str  # "accuracy" or "throughput"
    bs: int | None
    metric: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def pct(self) -> float | None:
        d = self.delta
        return None if d is None or not self.old else 100.0 * d / self.old


def parse_metrics_diff(diff: dict[str, Any]) -> tuple[list[Row], set[str]]:
    """Sorted rows from `dvc metrics diff --json --all` (keys flattened with dots), and the models
    either side marks as random-weight runs. Paths are metrics/eval/<model>/<precision>.json and
    metrics/bench/<model>-<bs>-<precision>.json (or the layout before precisions, fp32); rows name a model at a
    precision as paths.subject does; anything else under the metrics dirs is ignored."""
    rows: list[Row] = []
    random: set[str] = set()
    for path, values in diff.items():
        kind = paths.metrics_kind(path)
        if kind == "eval":
            model = paths.subject(*paths.eval_point(path))
            rows += [Row(model, "accuracy", None, m.name, number(values[m.name].get("old")),
                         number(values[m.name].get("new"))) for m in ACCURACY if m.name in values]
            rw = values.get(metrics.RANDOM_WEIGHTS, {})
            if rw.get("old") or rw.get("new"):
                random.add(model)
        elif kind == "bench" and (parsed := paths.parse_key(path)):
            model, bs = paths.subject(parsed[0], parsed[2]), parsed[1]
            rows += [Row(model, "throughput", bs, m.name, number(values[m.name].get("old")),
                         number(values[m.name].get("new"))) for m in TIMED if m.name in values]
    order = {m.name: i for i, m in enumerate(ACCURACY + TIMED)}
    rows.sort(key=lambda r: (r.model, r.kind, r.bs or 0, order[r.metric]))
    return rows, random


def metrics_diff(base: str, head: str) -> tuple[list[Row], set[str], list[str]]:
    """Rows, random-weight models and warnings (a revision that contributed no number at all)."""
    diff, stderr = dvc_json(["metrics", "diff", "--json", "--all", base, head])
    rows, random = parse_metrics_diff(diff)
    warnings = [ln.strip() for ln in stderr.splitlines() if "failed to load" in ln.lower()]
    for rev, side in ((base, "old"), (head, "new")):
        if not any(getattr(r, side) is not None for r in rows):
            warnings.append(f"no omzoo metrics at {rev!r} (nothing under metrics/eval or metrics/bench committed?)")
    return rows, random, warnings


def parse_params_diff(diff: dict[str, Any]) -> list[dict[str, str]]:
    """Changed parameters only, sorted by file and key, from `dvc params diff --json`; dict/list values shown as
    JSON."""
    def show(v: Any) -> str:
        return "–" if v is None else (json.dumps(v) if isinstance(v, dict | list) else str(v))

    return [{"file": f, "param": k, "old": show(v.get("old")), "new": show(v.get("new"))}
            for f in sorted(diff) for k, v in sorted(diff[f].items())]


def params_diff(base: str, head: str) -> list[dict[str, str]]:
    """The parameters that differ between the two revisions (see parse_params_diff)."""
    diff, _ = dvc_json(["params", "diff", "--json", base, head])
    return parse_params_diff(diff)
