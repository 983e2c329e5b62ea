"""The CI gate of `omzoo compare` and `omzoo abtest`, which fails closed.

`--fail-on regression` fails on a `regressed` speed verdict, on top-1 falling by more than
`compare.max_accuracy_drop` points, on any number whose evidence is missing, corrupt, field-less, contended or too
thin (the reason names the file), and when not one speed number could be judged at all. `--fail-on inconclusive`
fails, besides, on every number that could not be judged, whatever the cause (a different host, a wide interval).
"""

from __future__ import annotations

from omzoo.results.accuracy import Accuracy, accuracy_failures
from omzoo.results.verdicts import Judged

FAIL_ON = ("regression", "inconclusive")  # what `--fail-on` accepts, weakest first


def gate(judged: list[Judged], accuracy: list[Accuracy], max_drop: float, fail_on: str = "regression") -> list[str]:
    """Why the gate fails at level `fail_on`: one line per failing number (the evidence problems name their
    file); [] when it passes."""
    if fail_on not in FAIL_ON:
        raise ValueError(f"--fail-on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    out = [f"{j.model} bs{j.bs} {j.metric} regressed: ratio {j.ratio:.3f} [{j.ci_low:.3f}, {j.ci_high:.3f}]"
           for j in judged if j.verdict == "regressed"]
    out += [f"{j.model} bs{j.bs} {j.metric}: {j.evidence}" for j in judged if j.evidence]
    out += accuracy_failures(accuracy, max_drop)
    out += [f"{a.model} accuracy: {a.problem}" for a in accuracy if a.problem]
    if judged and all(j.verdict == "inconclusive" for j in judged):
        out.append(f"no speed number could be judged ({len(judged)} inconclusive)")
    if fail_on == "inconclusive":
        out += [f"{j.model} bs{j.bs} {j.metric} inconclusive: {j.reason}" for j in judged
                if j.verdict == "inconclusive" and not j.evidence]
        out += [f"{a.model} accuracy not compared: {a.status}{': ' + a.note if a.note else ''}" for a in accuracy
                if a.top1_drop is None and not a.problem]
    return out


def gate_line(reasons: list[str]) -> str:
    """The gate's reasons, short (the JSON lists each): "" when it passes."""
    regressed = sum(" regressed: " in r for r in reasons)
    short = [f"{regressed} speed number{'s' if regressed > 1 else ''} regressed"] if regressed else []
    rest = [r for r in reasons if " regressed: " not in r]
    return "; ".join(short + rest[:3] + ([f"and {len(rest) - 3} more"] if len(rest) > 3 else []))
