"""Speed verdicts: for every (model, bs) and every metric measured per round, HEAD/BASE of the medians of the
kept rounds (metrics/rounds/, committed) with a distribution-free interval, judged by omzoo.timing.stats.verdict.

A raw delta cannot tell a busy CPU from a slower toolkit; the rounds can. A side that is contended, failed, or has
too few rounds is inconclusive, never regressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omzoo.core import metrics, paths
from omzoo.core.metrics import Metric, number
from omzoo.results import revisions
from omzoo.results.rules import LEVEL, TIMED, CompareConfig
from omzoo.timing import stats

OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive")  # the order of the summary and the tables


#: The info-file fields that say which machine measured (CPU or accelerator, core count, driver, SoC): two results
#: that differ in any of them measured the host as much as the toolkit, so they get no speed verdict.
HOST_FIELDS = ("device", "cpu_count")
HOST_EXTRA = ("driver_version", "driver", "soc_version")


def host_of(info: dict[str, Any]) -> dict[str, str]:
    """The machine a bench info file names (HOST_FIELDS and, from its backend's extra, HOST_EXTRA)."""
    extra = info.get("extra") if isinstance(info.get("extra"), dict) else {}
    found = {k: str(info[k]) for k in HOST_FIELDS if info.get(k) not in (None, "")}
    return found | {k: str(extra[k]) for k in HOST_EXTRA if extra.get(k) not in (None, "")}


@dataclass(frozen=True)
class Side:
    """One revision's benchmark of one (model, bs): the metrics file (flattened), the kept rounds per metric, the
    host that measured it, why the side cannot be judged ("" when it can) and, separately, what is wrong with its
    evidence ("" when nothing is): a missing, corrupt or field-less file of a declared point fails the gate."""

    headline: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    contended: bool = False
    failed: bool = False  # out of memory: a result, recorded
    missing: str = ""
    problem: str = ""
    host: dict[str, str] = field(default_factory=dict)
    where: str = ""  # the metrics file, as `rev:path`
    rounds_where: str = ""  # the rounds file, as `rev:path`


def read_side(rev: str, model: str, bs: int, declared: bool = True) -> Side:
    """A revision's bench metrics, rounds and info files, from git. A point its params do not declare is simply
    not measured; one they declare must have all three files, readable and complete. `model`: a subject (a model at a
    precision, paths.subject)."""
    model, precision = paths.parse_subject(model)
    path = paths.bench_metrics(model, bs, precision)
    where = f"{rev}:{path}"
    found, why = revisions.read_evidence(rev, str(path))
    if why == "missing":
        return Side(missing="not measured", problem=f"{where} missing (the point is in its params.yaml)"
                    if declared else "", where=where)
    if why or not isinstance(found, dict):
        return Side(missing="unreadable", problem=f"{where} {why or 'is not a JSON object'}", where=where)
    try:
        headline = metrics.flatten(metrics.checked("bench", found, where))
    except ValueError as e:
        return Side(missing="unreadable", problem=str(e), where=where)
    if headline.get(metrics.FAILED):
        return Side(headline, failed=True, missing="failed (out of memory)", where=where)
    evidence: dict[str, Any] = {}
    for kind, p in (("rounds", paths.bench_rounds(model, bs, precision)),
                    ("info", paths.bench_info(model, bs, precision))):
        doc, why = revisions.read_evidence(rev, str(p))
        if why or not isinstance(doc, dict) or (kind == "rounds" and not isinstance(doc.get("samples"), dict)):
            why = why or ("has no per-round samples" if kind == "rounds" else "is not a JSON object")
            return Side(headline, missing=f"no usable {kind}", problem=f"{rev}:{p} {why}", where=where)
        evidence[kind] = doc
    rounds = evidence["rounds"]
    contended = bool(headline.get(metrics.CONTENDED) or rounds.get(metrics.CONTENDED))
    return Side(headline, dict(rounds["samples"]), contended, host=host_of(evidence["info"]), where=where,
                rounds_where=f"{rev}:{paths.bench_rounds(model, bs, precision)}")


def different_host(base: Side, head: Side) -> str:
    """"" when both sides were measured on the same kind of machine, else the fields that differ, in words."""
    diff = [f"{k} {base.host.get(k, '?')!r} vs {head.host.get(k, '?')!r}"
            for k in sorted(set(base.host) | set(head.host)) if base.host.get(k) != head.host.get(k)]
    return "; ".join(diff)


@dataclass(frozen=True)
class Judged:
    """One compared speed number: old and new are the medians of the kept rounds (the metrics file's value where
    a side has none), ratio = new/old with its interval and that interval's guaranteed coverage. `reason` is
    stats.verdict's; `finding` the same without the interval's numbers ("" where the reason names none)."""

    model: str
    bs: int
    metric: str
    unit: str
    better: str
    old: float | None
    new: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    coverage: float | None
    p_value: float | None  # exact Mann-Whitney, reported, not used by the rule
    verdict: str
    reason: str
    finding: str = ""
    evidence: str = ""  # what is wrong with the data behind this number ("" = nothing): the gate fails on it

    @property
    def why(self) -> str:
        """The reason, short, for a table whose own columns show the ratio and its interval."""
        return self.finding or self.reason


def judge(model: str, bs: int, metric: Metric, base: Side, head: Side, cfg: CompareConfig) -> Judged:
    """stats.verdict on the two sides' rounds. A number that cannot be judged is inconclusive, never regressed;
    when the cause is the data (missing, corrupt or field-less files, contended or too few rounds, HEAD failing
    where BASE ran) `evidence` says so, naming the file, and the gate fails on it."""
    old, new = number(base.headline.get(metric.name)), number(head.headline.get(metric.name))

    def inconclusive(reason: str, evidence: str = "") -> Judged:
        return Judged(model, bs, metric.name, metric.unit, metric.better, old, new, None, None, None, None, None,
                      "inconclusive", reason, evidence=evidence)

    problems = [s.problem for s in (base, head) if s.problem]
    if not problems and head.failed and not base.missing:
        problems.append(f"{head.where}: head failed (out of memory) where base ran")
    if not problems:
        problems = [f"{at} has no {what} of {metric.name}" for s in (base, head) if not s.missing
                    for what, ok, at in (("value", number(s.headline.get(metric.name)) is not None, s.where),
                                         ("rounds", bool(s.samples.get(metric.name)), s.rounds_where)) if not ok]
    if problems:
        return inconclusive("; ".join(problems), "; ".join(problems))
    missing = [f"{name} {s.missing}" for name, s in (("base", base), ("head", head)) if s.missing]
    if missing:
        return inconclusive("; ".join(missing))
    host = different_host(base, head)
    if host:
        return inconclusive(f"different host: {host}; a speed verdict needs both measured on one host "
                            "(omzoo abtest there)")
    try:
        v = stats.verdict(base.samples[metric.name], head.samples[metric.name], metric.better,
                          min_effect=cfg.min_effect, min_rounds=cfg.min_rounds, base_contended=base.contended,
                          head_contended=head.contended, level=LEVEL, drift=cfg.drift)
    except (ValueError, TypeError) as e:  # rounds that are no positive numbers: a broken file, not a verdict
        return inconclusive(f"unusable rounds: {e}", f"{base.where} / {head.where}: unusable rounds: {e}")
    r = v.ratio
    assert r is not None  # both sides have rounds
    evidence = v.reason if v.outcome == "inconclusive" else ""  # contended or too few rounds: re-measure
    return Judged(model, bs, metric.name, metric.unit, metric.better, r.base.median, r.head.median, r.ratio, r.low,
                  r.high, r.coverage, v.p_value, v.outcome, v.reason, v.finding, evidence)


def verdicts(base: str, head: str, keys: list[tuple[str, int]], cfg: CompareConfig,
             declared: dict[str, set[tuple[str, int]]] | None = None) -> list[Judged]:
    """Every (model, bs) × per-round metric, in key order; `declared` holds the points each revision's params ask
    for (a point only one side declares is not measured on the other, not broken there)."""
    out: list[Judged] = []
    for model, bs in keys:
        b, h = (read_side(rev, model, bs, declared is None or (model, bs) in declared[rev]) for rev in (base, head))
        out += [judge(model, bs, m, b, h, cfg) for m in TIMED]
    return out
