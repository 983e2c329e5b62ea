"""The CI gate of `omzoo compare --fail-on regression`: it fails when a speed verdict is `regressed` or top-1 fell by
more than `compare.max_accuracy_drop` points (HEAD's params.yaml)."""

from __future__ import annotations

from omzoo.results.accuracy import Accuracy, accuracy_failures
from omzoo.results.rules import CompareConfig
from omzoo.results.verdicts import Judged

FAIL_ON = ("regression",)  # what `--fail-on` accepts


def gate(judged: list[Judged], accuracy: list[Accuracy], cfg: CompareConfig) -> list[str]:
    """Why `--fail-on regression` fails: every regressed verdict and every top-1 drop beyond the allowance."""
    return [f"{j.model} bs{j.bs} {j.metric} regressed: ratio {j.ratio:.3f} [{j.ci_low:.3f}, {j.ci_high:.3f}]"
            for j in judged if j.verdict == "regressed"] + accuracy_failures(accuracy, cfg)


def gate_line(judged: list[Judged], accuracy: list[Accuracy], cfg: CompareConfig) -> str:
    """The gate's reasons, short (compare.json lists each regressed number): "" when it passes."""
    regressed = sum(j.verdict == "regressed" for j in judged)
    numbers = f"{regressed} speed number{'s' if regressed > 1 else ''} regressed"
    return "; ".join(([numbers] if regressed else []) + accuracy_failures(accuracy, cfg))
