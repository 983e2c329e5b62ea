"""What a comparison of two revisions compares, and by which rules.

The compared metrics, their direction, unit and digits are omzoo.core.metrics.SCHEMA's; the thresholds are the
`compare:` section of HEAD's params.yaml, so the rule is versioned with the branch it judges; the points are the
(model, bs) pairs either revision's params ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

from omzoo.core import metrics
from omzoo.core.metrics import Metric
from omzoo.core.params import Params
from omzoo.results import revisions

LEVEL = 0.95  # the ratio interval's target confidence (each row reports the coverage it reaches)
ACCURACY: tuple[Metric, ...] = tuple(m for m in metrics.of("eval") if m.compared)
TIMED: tuple[Metric, ...] = tuple(metrics.get("bench", n) for n in metrics.ROUND_METRICS)


@dataclass(frozen=True)
class CompareConfig:
    """params.yaml `compare:` (read with Params.typed from HEAD's revision)."""

    min_effect: float = 0.03  # the ratio interval must lie this far beyond 1 to count (below it: drift)
    drift: float = 0.08  # between two runs of one commit on one host; the interval is widened by it on both sides
    max_accuracy_drop: float = 0.0  # top-1 points HEAD may lose before the gate fails; 0: one image counts
    min_rounds: int = 5  # fewer kept rounds on either side: inconclusive
    show_images: int = 10  # changed images listed by name, per model


def rules(head: str) -> CompareConfig:
    """The comparison's rules: HEAD's `compare:` section (defaults where that revision has none)."""
    return revisions.read_params(head).typed(CompareConfig, "compare")


def declared(params: Params) -> tuple[list[str], list[tuple[str, int]]]:
    """The models and (model, bs) points a revision's params ask for: the keys, never a directory glob (a shrunk
    sweep leaves stale files behind, docs/dvc.md §2)."""
    models = list(params.models)
    return models, [(m, int(bs)) for m in models for bs in params.batch_sizes]


def points(base: str, head: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The models and (model, bs) points either revision's params ask for, sorted."""
    models: set[str] = set()
    keys: set[tuple[str, int]] = set()
    for rev in (base, head):
        m, k = declared(revisions.read_params(rev))
        models.update(m)
        keys.update(k)
    return sorted(models), sorted(keys)
