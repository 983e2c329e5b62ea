"""What a comparison of two revisions compares, and by which rules.

The compared metrics, their direction, unit and digits are omzoo.core.metrics.SCHEMA's; the thresholds are the
`compare:` (or `abtest:`) section of BASE's params.yaml, the reference: a branch must not pass its own gate by
loosening it, so a HEAD value is used only where it is stricter, and a looser one is reported and ignored. The
points are the (model at a precision, bs) pairs either revision's params ask for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from omzoo.core import metrics, paths
from omzoo.core.metrics import Metric
from omzoo.core.params import AbtestConfig, CompareConfig, Params
from omzoo.results import revisions

LEVEL = 0.95  # the ratio interval's target confidence (each row reports the coverage it reaches)
ACCURACY: tuple[Metric, ...] = tuple(m for m in metrics.of("eval") if m.compared)
TIMED: tuple[Metric, ...] = tuple(metrics.get("bench", n) for n in metrics.ROUND_METRICS)
T = TypeVar("T")


#: Which way each key is stricter; a HEAD value is taken only when it is the stricter one (min: a smaller value
#: gates harder, max: a larger one). Keys not listed are BASE's alone: a change either way weakens the evidence
#: (fewer rounds) or silences it (more rounds than a run has, a wider level). show_images only shows.
STRICTER: dict[str, Callable[[Any, Any], Any]] = {
    "min_effect": min, "drift": min, "max_accuracy_drop": min, "max_pairs": max, "max_s": max, "show_images": max,
}


@dataclass(frozen=True)
class Rules:
    """The rules a comparison applies, where they come from, and what HEAD asked for that was not taken."""

    config: Any  # CompareConfig or AbtestConfig
    source: str
    notes: list[str]


def reference_rules(cls: type[T], section: str, base: Params, head: Params, base_name: str,
                    head_name: str) -> Rules:
    """`section` as BASE has it, with each HEAD value that is stricter (STRICTER) taken over; every HEAD value
    that differs otherwise is named in `notes` as ignored."""
    ref = dataclasses.asdict(base.typed(cls, section))  # type: ignore[call-overload]
    theirs = dataclasses.asdict(head.typed(cls, section))  # type: ignore[call-overload]
    given = head.section(section)
    notes: list[str] = []
    for key, value in theirs.items():
        if key not in given or value == ref[key]:
            continue
        stricter = STRICTER.get(key)
        if stricter is not None and stricter(value, ref[key]) == value:
            notes.append(f"{head_name}'s {section}.{key} {value!r} is stricter than {base_name}'s {ref[key]!r}: used")
            ref[key] = value
        else:
            how = "would loosen" if stricter is not None else "differs from"
            notes.append(f"{head_name}'s {section}.{key} {value!r} {how} {base_name}'s {ref[key]!r}: ignored "
                         f"(the rules are the reference's, {base_name})")
    return Rules(cls(**ref), f"{base_name}:{section}", notes)


def rules(base: str, head: str) -> Rules:
    """compare's rules: BASE's `compare:` section, tightened by HEAD's."""
    return reference_rules(CompareConfig, "compare", revisions.read_params(base), revisions.read_params(head),
                           base, head)


def abtest_rules(base: Params, head: Params, base_name: str, head_name: str) -> Rules:
    """abtest's rules: BASE's `abtest:` section, tightened by HEAD's."""
    return reference_rules(AbtestConfig, "abtest", base, head, base_name, head_name)


def declared(params: Params) -> tuple[list[str], list[tuple[str, int]]]:
    """The subjects (a model at a precision: paths.subject) and (subject, bs) points a revision's params ask for: the
    keys, never a directory glob (a shrunk sweep leaves stale files behind, docs/dvc.md §2)."""
    subjects = [paths.subject(m, p) for m in params.models for p in params.precisions]
    return subjects, [(s, int(bs)) for s in subjects for bs in params.batch_sizes]


def points(base: str, head: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The subjects and (subject, bs) points either revision's params ask for, sorted."""
    models: set[str] = set()
    keys: set[tuple[str, int]] = set()
    for rev in (base, head):
        m, k = declared(revisions.read_params(rev))
        models.update(m)
        keys.update(k)
    return sorted(models), sorted(keys)
