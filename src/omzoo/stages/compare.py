"""`omzoo compare`: what did this toolkit change? Verdicts with confidence, per-image accuracy changes, a CI gate.

- Speed (BENCHMARKING.md R10). For every (model, bs) and every metric measured per round (metrics.ROUND_METRICS),
  the kept rounds of both revisions (metrics/rounds/, committed) give HEAD/BASE of the medians with a
  distribution-free interval and a verdict (omzoo.timing.stats.verdict): improved, regressed, unchanged, or inconclusive
  when a side is contended, failed or has too few rounds. A raw delta cannot tell a busy CPU from a slower
  toolkit; the rounds can.
- Accuracy. On the same data, every changed prediction is real, not noise: top-k are compared as exact numbers,
  and each revision's per-image top-1 (infer's predictions.json, DVC-tracked, read through the DVC cache or the
  remote) says which images changed. Different data (the dataset manifest hash differs) is refused.
- Gate. With `--fail-on regression` the exit status is 1 when a verdict is `regressed` or top-1 fell by more
  than `compare.max_accuracy_drop` points. The rules are the `compare:` section of HEAD's params.yaml: the rule
  is versioned with the branch it judges.

Metrics, rounds, info files and the plot's CSV are committed (`cache: false`), so everything but the per-image
predictions is read from git on any clone. DVC exits 0 when it fails to load a revision's metrics and does not
sort its rows (DVC.md §5), so content is checked and sorted here. Which metrics are compared, their direction,
unit and digits are omzoo.core.metrics.SCHEMA's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core import metrics, paths
from omzoo.core.io import write_bytes_atomic, write_json_atomic
from omzoo.core.metrics import Metric, fmt, number
from omzoo.core.params import Params
from omzoo.results import revisions
from omzoo.results.plots import render_plots
from omzoo.results.revisions import DvcError, NotAvailable, check_revision, dvc_json
from omzoo.timing import stats

HELP = "compare two revisions: speed verdicts over benchmark rounds, per-image accuracy changes, params, plot"

LEVEL = 0.95  # the ratio interval's target confidence (each row reports the coverage it reaches)
ACCURACY: tuple[Metric, ...] = tuple(m for m in metrics.of("eval") if m.compared)
TIMED: tuple[Metric, ...] = tuple(metrics.get("bench", n) for n in metrics.ROUND_METRICS)
OUTCOMES = ("regressed", "improved", "unchanged", "inconclusive")  # the order of the summary and the tables
FAIL_ON = ("regression",)
#: accuracy outcomes the summary groups (models listed together), and how it words them
GROUPED = {"identical": "identical", "same top-k": "same top-1..5, per-image predictions not readable here"}
_ROUNDING = 0.5 * 10.0**-metrics.WRITTEN_DECIMALS  # metrics files round to this; a smaller drop is no drop


@dataclass(frozen=True)
class CompareConfig:
    """params.yaml `compare:` (read with Params.typed from HEAD's revision)."""

    min_effect: float = 0.03  # the ratio interval must lie this far beyond 1 to count (below it: drift)
    max_accuracy_drop: float = 0.0  # top-1 points HEAD may lose before the gate fails; 0: one image counts
    min_rounds: int = 5  # fewer kept rounds on either side: inconclusive
    show_images: int = 10  # changed images listed by name, per model


def rules(head: str) -> CompareConfig:
    """The comparison's rules: HEAD's `compare:` section (defaults where that revision has none)."""
    return revisions.read_params(head).typed(CompareConfig, "compare")


def declared(params: Params) -> tuple[list[str], list[tuple[str, int]]]:
    """The models and (model, bs) points a revision's params ask for: the keys, never a directory glob (DVC.md §2:
    a shrunk sweep leaves stale files)."""
    models = list(params.models)
    return models, [(m, int(bs)) for m in models for bs in params.batch_sizes]


def _label(m: Metric) -> str:
    """`e2e_ms.p99 (ms ↓)`: the name, its unit and which way is better."""
    arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
    return f"{m.name} ({m.unit}{arrow})" if m.unit or arrow else m.name


# ----------------------------------------------------------------------------------- numbers (dvc metrics diff)


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
    either side marks as random-weight runs. Paths are metrics/eval/<model>.json and
    metrics/bench/<model>-<bs>.json; anything else under the metrics dirs is ignored."""
    rows: list[Row] = []
    random: set[str] = set()
    for path, values in diff.items():
        kind = paths.metrics_kind(path)
        if kind == "eval":
            model = Path(path).stem
            rows += [Row(model, "accuracy", None, m.name, number(values[m.name].get("old")),
                         number(values[m.name].get("new"))) for m in ACCURACY if m.name in values]
            rw = values.get(metrics.RANDOM_WEIGHTS, {})
            if rw.get("old") or rw.get("new"):
                random.add(model)
        elif kind == "bench" and (parsed := paths.parse_key(path)):
            model, bs = parsed
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


def _signed(v: float | None, digits: int, suffix: str = "") -> str:
    return "–" if v is None else f"{v:+.{digits}f}{suffix}"


def numbers_tables(rows: list[Row], base: str, head: str) -> str:
    """Two GitHub tables of the raw numbers: accuracy per model, then speed per model and batch size."""
    from tabulate import tabulate

    schema = {m.name: m for m in ACCURACY + TIMED}
    old, new = f"old ({base})", f"new ({head})"

    def cells(r: Row) -> list[str]:
        d = schema[r.metric].digits
        return [_label(schema[r.metric]), fmt(r.old, d), fmt(r.new, d), _signed(r.delta, d), _signed(r.pct, 1, " %")]

    acc = [[r.model, *cells(r)] for r in rows if r.kind == "accuracy"]
    speed = [[r.model, str(r.bs), *cells(r)] for r in rows if r.kind == "throughput"]
    return "\n".join([
        tabulate(acc, ["model", "metric", old, new, "delta", "%"], tablefmt="github", disable_numparse=True)
        if acc else "No accuracy metrics in either revision.", "",
        tabulate(speed, ["model", "bs", "metric", old, new, "delta", "%"], tablefmt="github", disable_numparse=True)
        if speed else "No throughput metrics in either revision."])


# ------------------------------------------------------------------------------------------ speed verdicts


@dataclass(frozen=True)
class Side:
    """One revision's benchmark of one (model, bs): the metrics file (flattened), the kept rounds per metric, and
    why the side cannot be judged at all ("" when it can)."""

    headline: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    contended: bool = False
    missing: str = ""


def read_side(rev: str, model: str, bs: int) -> Side:
    """A revision's bench metrics and rounds files, from git; a missing or failed run is a reason, not an error."""
    found = revisions.read_json(rev, str(paths.bench_metrics(model, bs)))
    if not isinstance(found, dict):
        return Side(missing="not measured")
    headline = metrics.flatten(found)
    if headline.get(metrics.FAILED):
        return Side(headline, missing="failed (out of memory)")
    rounds_path = paths.bench_rounds(model, bs)
    rounds = revisions.read_json(rev, str(rounds_path))
    if not isinstance(rounds, dict) or not isinstance(rounds.get("samples"), dict):
        return Side(headline, missing=f"has no rounds ({rounds_path}: measured before rounds were kept?)")
    contended = bool(headline.get(metrics.CONTENDED) or rounds.get(metrics.CONTENDED))
    return Side(headline, dict(rounds["samples"]), contended)


@dataclass(frozen=True)
class Judged:
    """One compared speed number: old and new are the medians of the kept rounds (the metrics file's value where
    a side has none), ratio = new/old with its interval and that interval's guaranteed coverage."""

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


def judge(model: str, bs: int, metric: Metric, base: Side, head: Side, cfg: CompareConfig) -> Judged:
    """stats.verdict on the two sides' rounds; a side without usable rounds is inconclusive, never regressed."""
    old, new = number(base.headline.get(metric.name)), number(head.headline.get(metric.name))
    missing = [f"{name} {s.missing or f'has no rounds of {metric.name}'}"
               for name, s in (("base", base), ("head", head)) if s.missing or not s.samples.get(metric.name)]
    if missing:
        return Judged(model, bs, metric.name, metric.unit, metric.better, old, new, None, None, None, None, None,
                      "inconclusive", "; ".join(missing))
    try:
        v = stats.verdict(base.samples[metric.name], head.samples[metric.name], metric.better,
                          min_effect=cfg.min_effect, min_rounds=cfg.min_rounds, base_contended=base.contended,
                          head_contended=head.contended, level=LEVEL)
    except (ValueError, TypeError) as e:  # rounds that are no positive numbers: a broken file, not a verdict
        return Judged(model, bs, metric.name, metric.unit, metric.better, old, new, None, None, None, None, None,
                      "inconclusive", f"unusable rounds: {e}")
    r = v.ratio
    assert r is not None  # both sides have rounds
    return Judged(model, bs, metric.name, metric.unit, metric.better, r.base.median, r.head.median, r.ratio, r.low,
                  r.high, r.coverage, v.p_value, v.outcome, v.reason)


def verdicts(base: str, head: str, keys: list[tuple[str, int]], cfg: CompareConfig) -> list[Judged]:
    """Every (model, bs) × per-round metric, in key order."""
    out: list[Judged] = []
    for model, bs in keys:
        b, h = read_side(base, model, bs), read_side(head, model, bs)
        out += [judge(model, bs, m, b, h, cfg) for m in TIMED]
    return out


# -------------------------------------------------------------------------------------------------- accuracy


@dataclass(frozen=True)
class Predictions:
    """One revision's per-image top-1 (infer's predictions.json), in dataset order."""

    names: list[str]
    labels: np.ndarray | None
    predicted: np.ndarray  # the top-1 class per image
    shards_hash: str


def read_predictions(rev: str, model: str) -> Predictions:
    """Through the DVC cache or remote (revisions.read_tracked); raises NotAvailable with the fetch command."""
    path = paths.predictions(model)
    try:
        raw = json.loads(revisions.read_tracked(rev, str(path)))
        labels = raw.get("labels")
        p = Predictions(list(raw["names"]), None if labels is None else np.asarray(labels, dtype=np.int64),
                        np.asarray(raw["predicted"], dtype=np.int64), str(raw["shards_hash"]))
    except (ValueError, KeyError, TypeError) as e:
        raise NotAvailable(f"{path} at {rev} is not a predictions file ({type(e).__name__}: {e})") from None
    if len(p.names) != len(p.predicted) or (p.labels is not None and len(p.labels) != len(p.predicted)):
        raise NotAvailable(f"{path} at {rev}: names, labels and predicted differ in length")
    return p


@dataclass
class Accuracy:
    """One model's accuracy, compared: exact top-k, and which images changed their top-1 (None where unknown)."""

    model: str
    status: str = ""  # identical | changed | same top-k | different data | not evaluated
    note: str = ""
    n_images: int | None = None
    topk: dict[str, dict[str, float | None]] = field(default_factory=dict)  # {metric: {"old": .., "new": ..}}
    n_changed_top1: int | None = None
    right_to_wrong: int | None = None
    wrong_to_right: int | None = None
    changed: list[dict[str, Any]] = field(default_factory=list)  # the first: name, label, old, new (class ids)
    unreadable: dict[str, str] = field(default_factory=dict)  # revision -> why its predictions could not be read
    fetch_targets: dict[str, str] = field(default_factory=dict)  # revision -> the DVC target a fetch would bring

    @property
    def top1_drop(self) -> float | None:
        """old − new top-1 in points; None when the two runs cannot be compared."""
        t = self.topk.get(metrics.TOP1, {})
        if self.status in ("different data", "not evaluated") or t.get("old") is None or t.get("new") is None:
            return None
        return t["old"] - t["new"]


def image_changes(base: Predictions, head: Predictions, show: int) -> dict[str, Any]:
    """How many images changed their top-1, right→wrong and wrong→right against the labels, and the first `show`
    of them in dataset order. Both sides must score the same images (same shard set)."""
    moved = np.flatnonzero(base.predicted != head.predicted)
    out: dict[str, Any] = {"n_changed_top1": int(moved.size), "right_to_wrong": None, "wrong_to_right": None}
    if base.labels is not None:
        was, now = base.predicted == base.labels, head.predicted == base.labels
        out.update(right_to_wrong=int(np.sum(was & ~now)), wrong_to_right=int(np.sum(~was & now)))
    out["changed"] = [{"name": base.names[i], "label": None if base.labels is None else int(base.labels[i]),
                       "old": int(base.predicted[i]), "new": int(head.predicted[i])} for i in moved[:show]]
    return out


def compare_accuracy(base: str, head: str, model: str, cfg: CompareConfig) -> Accuracy:
    """Top-k from the committed eval metrics; per-image changes from both revisions' predictions when readable."""
    acc = Accuracy(model)
    sides = {rev: revisions.read_json(rev, str(paths.eval_metrics(model))) for rev in (base, head)}
    absent = [rev for rev, m in sides.items() if not isinstance(m, dict)]
    if absent:
        acc.status, acc.note = "not evaluated", f"no {paths.eval_metrics(model)} at {' and '.join(absent)}"
        return acc
    old, new = sides[base], sides[head]
    acc.topk = {m.name: {"old": number(old.get(m.name)), "new": number(new.get(m.name))} for m in ACCURACY}
    n_images = number(old.get(metrics.N_IMAGES))
    acc.n_images = None if n_images is None else int(n_images)
    data = [(revisions.read_json(rev, str(paths.eval_info(model))) or {}).get("dataset_manifest")
            for rev in (base, head)]
    if all(data) and data[0] != data[1]:
        acc.status = "different data"
        acc.note = (f"not compared: {base} ran on dataset manifest {str(data[0])[:12]}…, {head} on "
                    f"{str(data[1])[:12]}… (different data)")
        return acc
    same_topk = all(v["old"] == v["new"] for v in acc.topk.values())
    read: list[Predictions] = []
    for rev in (base, head):
        try:
            read.append(read_predictions(rev, model))
        except NotAvailable as e:
            acc.unreadable[rev] = str(e)
            if e.fetch:
                acc.fetch_targets[rev] = e.fetch
    if acc.unreadable:
        acc.status = "same top-k" if same_topk else "changed"
        if len(acc.fetch_targets) < len(acc.unreadable):  # a reason a fetch cannot cure: said per model
            acc.note = "per-image changes not compared: " + "; ".join(
                why for rev, why in acc.unreadable.items() if rev not in acc.fetch_targets)
        return acc
    b, h = read
    if b.shards_hash != h.shards_hash or b.names != h.names:
        acc.status = "different data"
        acc.note = "not compared: the two runs' predictions come from different shard sets (different data)"
        return acc
    changes = image_changes(b, h, cfg.show_images)
    acc.n_images = len(b.names)
    acc.n_changed_top1, acc.right_to_wrong = changes["n_changed_top1"], changes["right_to_wrong"]
    acc.wrong_to_right, acc.changed = changes["wrong_to_right"], changes["changed"]
    acc.status = "identical" if same_topk and not acc.n_changed_top1 else "changed"
    return acc


# ------------------------------------------------------------------------------------------------------ gate


def accuracy_failures(accuracy: list[Accuracy], cfg: CompareConfig) -> list[str]:
    """Every model whose top-1 fell by more than compare.max_accuracy_drop points (same data only)."""
    out = []
    for a in accuracy:
        drop = a.top1_drop
        if drop is not None and drop > cfg.max_accuracy_drop + _ROUNDING:
            t = a.topk[metrics.TOP1]
            out.append(f"{a.model} top-1 fell {drop:.2f} points ({t['old']:.2f} → {t['new']:.2f} %), more than "
                       f"compare.max_accuracy_drop {cfg.max_accuracy_drop:g}")
    return out


def gate(judged: list[Judged], accuracy: list[Accuracy], cfg: CompareConfig) -> list[str]:
    """Why `--fail-on regression` fails: every regressed verdict and every top-1 drop beyond the allowance."""
    return [f"{j.model} bs{j.bs} {j.metric} regressed: ratio {j.ratio:.3f} [{j.ci_low:.3f}, {j.ci_high:.3f}]"
            for j in judged if j.verdict == "regressed"] + accuracy_failures(accuracy, cfg)


def gate_line(judged: list[Judged], accuracy: list[Accuracy], cfg: CompareConfig) -> str:
    """The gate's reasons, short (compare.json lists each regressed number): "" when it passes."""
    regressed = sum(j.verdict == "regressed" for j in judged)
    numbers = f"{regressed} speed number{'s' if regressed > 1 else ''} regressed"
    return "; ".join(([numbers] if regressed else []) + accuracy_failures(accuracy, cfg))


# -------------------------------------------------------------------------------------------------- markdown


def _why(j: Judged, cfg: CompareConfig) -> str:
    """The verdict's reason, short: the interval and ratio are in their own columns."""
    if j.verdict == "inconclusive" or j.ratio is None or j.ci_low is None or j.ci_high is None:
        return j.reason
    if j.ci_low <= 1.0 <= j.ci_high:
        return "interval includes 1"
    effect = f"at least {(1.0 - j.ci_high if j.ci_high < 1.0 else j.ci_low - 1.0):.1%}"
    return f"interval excludes 1, {effect}" if j.verdict != "unchanged" else f"{effect} < {cfg.min_effect:.0%}"


def verdict_table(rows: list[Judged], base: str, head: str, cfg: CompareConfig) -> str:
    from tabulate import tabulate

    schema = {m.name: m for m in TIMED}

    def cells(j: Judged) -> list[str]:
        d = schema[j.metric].digits
        interval = "–" if j.ci_low is None or j.coverage is None else \
            f"[{j.ci_low:.3f}, {j.ci_high:.3f}] {j.coverage:.0%}"
        return [j.verdict, j.model, str(j.bs), _label(schema[j.metric]), fmt(j.old, d), fmt(j.new, d),
                fmt(j.ratio, 3), interval, _why(j, cfg)]

    return tabulate([cells(j) for j in rows], ["verdict", "model", "bs", "metric", f"old ({base})", f"new ({head})",
                                               "ratio", "interval (coverage)", "why"],
                    tablefmt="github", disable_numparse=True)


def _accuracy_phrase(a: Accuracy) -> str:
    """A model whose accuracy changed or was not compared, in a few words (the others are grouped by status)."""
    if a.status in ("different data", "not evaluated"):
        return f"{a.model} not compared ({a.status})"
    t = a.topk.get(metrics.TOP1, {})
    top1 = f"top-1 {fmt(t.get('old'))} → {fmt(t.get('new'))} %"
    if a.n_changed_top1 is None:
        return f"{a.model} {top1}, per-image predictions not readable here"
    moved = f"{a.n_changed_top1} of {a.n_images} images changed top-1"
    if a.right_to_wrong is not None:
        moved += f": {a.right_to_wrong} right→wrong, {a.wrong_to_right} wrong→right"
    return f"{a.model} {top1} ({moved})"


def summary_line(judged: list[Judged], accuracy: list[Accuracy]) -> str:
    """The one paragraph a reader (or a CI comment) needs: verdict counts, then accuracy: models with the same
    outcome grouped, each change in a few words."""
    counts = Counter(j.verdict for j in judged)
    speed = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)
    parts = []
    for status, words in GROUPED.items():
        same = [a for a in accuracy if a.status == status]
        if same:
            sizes = {a.n_images for a in same}
            n = f" on {sizes.pop()} images" + (" each" if len(same) > 1 else "") if len(sizes) == 1 else ""
            parts.append(f"{words} for {', '.join(a.model for a in same)}{n}")
    parts += [_accuracy_phrase(a) for a in accuracy if a.status not in GROUPED]
    return f"{speed} (of {len(judged)} speed numbers); accuracy: {'; '.join(parts) or 'no model evaluated'}."


def accuracy_section(accuracy: list[Accuracy], random: set[str]) -> list[str]:
    from tabulate import tabulate

    def cell(v: int | None) -> str:
        return "–" if v is None else str(v)

    top = [ACCURACY[0].name, ACCURACY[-1].name]  # top-1 and top-5, what the guides publish

    def pair(a: Accuracy, k: str) -> str:  # refused comparisons show no numbers side by side
        t = a.topk.get(k, {})
        return "–" if a.status == "different data" or not t else f"{fmt(t.get('old'))} → {fmt(t.get('new'))}"

    rows = [[a.model, a.status, cell(a.n_images), *[pair(a, k) for k in top],
             cell(a.n_changed_top1), cell(a.right_to_wrong), cell(a.wrong_to_right)] for a in accuracy]
    lines = ["### Accuracy (exact counts on the same images)", ""]
    if random:
        lines += [f"Random weights for {', '.join(sorted(random))}: accuracy means nothing, but a changed prediction "
                  "still shows the toolkit computes something different.", ""]
    lines.append(tabulate(rows, ["model", "status", "images", *[f"{k} %" for k in top], "top-1 changed",
                                 "right→wrong", "wrong→right"], tablefmt="github", disable_numparse=True)
                 if rows else "No model in either revision's params.")
    items = []
    for a in accuracy:
        if a.changed:
            shown = ", ".join(f"`{c['name']}` {c['old']}→{c['new']}" + ("" if c["label"] is None else
                                                                          f" (label {c['label']})")
                              for c in a.changed)
            more = f" (first {len(a.changed)} of {a.n_changed_top1})" if a.n_changed_top1 != len(a.changed) else ""
            items.append(f"- {a.model}, changed top-1{more}: {shown}")
        if a.note:
            items.append(f"- {a.model}: {a.note}")
    for rev, command in fetch_commands(accuracy).items():
        where = "or run the infer stages" if rev == "workspace" else f"after `dvc push` where {rev} ran, if no " \
            "remote holds them"
        items.append(f"- Per-image predictions at {rev} are in neither this DVC cache nor a remote reachable here: "
                     f"`{command}` ({where}).")
    return lines + ([""] + items if items else [])


def fetch_commands(accuracy: list[Accuracy]) -> dict[str, str]:
    """Per revision, the one command that fetches every unreadable prediction of it into this DVC cache."""
    targets: dict[str, list[str]] = {}
    for a in accuracy:
        for rev, target in a.fetch_targets.items():
            targets.setdefault(rev, []).append(target)
    return {rev: revisions.fetch_command(rev, " ".join(t)) for rev, t in targets.items()}


def _details(summary: str, body: str) -> list[str]:
    """A collapsed block in a GitHub comment (blank lines around the markdown inside, or it is not rendered)."""
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>"]


# ------------------------------------------------------------------------------------------------ params diff


def params_diff(base: str, head: str) -> list[dict[str, str]]:
    """Changed parameters only, sorted by file and key; dict/list values shown as JSON."""
    diff, _ = dvc_json(["params", "diff", "--json", base, head])

    def show(v: Any) -> str:
        return "–" if v is None else (json.dumps(v) if isinstance(v, dict | list) else str(v))

    return [{"file": f, "param": k, "old": show(v.get("old")), "new": show(v.get("new"))}
            for f in sorted(diff) for k, v in sorted(diff[f].items())]


def params_table(rows: list[dict[str, str]], base: str, head: str) -> str:
    from tabulate import tabulate

    if not rows:
        return "No parameter differs."
    return tabulate([[r["file"], r["param"], r["old"], r["new"]] for r in rows],
                    ["file", "param", f"old ({base})", f"new ({head})"], tablefmt="github", disable_numparse=True)


# ---------------------------------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Comparison:
    text: str  # the markdown, also <out>/compare.md
    warnings: list[str]
    failed: str  # why the gate fails, short; "" = it passes


def points(base: str, head: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The models and (model, bs) points either revision's params ask for, sorted."""
    models: set[str] = set()
    keys: set[tuple[str, int]] = set()
    for rev in (base, head):
        m, k = declared(revisions.read_params(rev))
        models.update(m)
        keys.update(k)
    return sorted(models), sorted(keys)


def markdown(base: str, head: str, cfg: CompareConfig, judged: list[Judged], accuracy: list[Accuracy],
             rows: list[Row], random: set[str], params: list[dict[str, str]], gate_text: str | None) -> list[str]:
    """Summary (and the gate, when asked), the verdicts with regressions first, accuracy, then the raw numbers and
    the params; `gate_text` is None without --fail-on, "" when the gate passes."""
    md = [f"## omzoo compare: {base} → {head}", "", f"**Summary.** {summary_line(judged, accuracy)}"]
    if gate_text is not None:
        md += ["", "**Gate** (`--fail-on regression`): " + (f"**failed**: {gate_text}." if gate_text else "passed.")]
    md += ["", f"Speed verdicts judge the kept benchmark rounds: HEAD/BASE of the medians with an order-statistic "
           f"interval (distribution-free, coverage shown); a change needs the whole interval at least "
           f"{cfg.min_effect:.0%} away from 1 (a change we can defend, beyond run-to-run drift); a contended or "
           f"failed side, or one with fewer than {cfg.min_rounds} "
           f"rounds, is inconclusive. Rules: `compare:` in {head}'s params.yaml.", "", "### Verdicts", ""]
    order = {o: i for i, o in enumerate(OUTCOMES)}
    shown = sorted((j for j in judged if j.verdict != "unchanged"), key=lambda j: order[j.verdict])
    md.append(verdict_table(shown, base, head, cfg) if shown else
              "No speed number regressed, improved or was inconclusive.")
    unchanged = [j for j in judged if j.verdict == "unchanged"]
    if unchanged:
        md += [""] + _details(f"{len(unchanged)} unchanged", verdict_table(unchanged, base, head, cfg))
    md += [""] + accuracy_section(accuracy, random)
    md += ["", "### Numbers", ""] + _details("every compared metric, old and new (dvc metrics diff)",
                                             numbers_tables(rows, base, head))
    return md + ["", "### Parameters", "", params_table(params, base, head)]


def compare(base: str, head: str, out: Path, plots: bool = True, fail_on: str | None = None) -> Comparison:
    """The whole comparison: markdown to <out>/compare.md, every row to <out>/compare.json."""
    for rev in (base, head):
        check_revision(rev)
    cfg = rules(head)
    models, keys = points(base, head)
    judged = verdicts(base, head, keys, cfg)
    accuracy = [compare_accuracy(base, head, m, cfg) for m in models]
    rows, random, warnings = metrics_diff(base, head)
    rows = [r for r in rows if r.model in models and (r.bs is None or (r.model, r.bs) in keys)]
    params = params_diff(base, head)
    why = gate_line(judged, accuracy, cfg)
    md = markdown(base, head, cfg, judged, accuracy, rows, random, params, why if fail_on else None)
    if plots:
        try:
            page = render_plots([base, head], out)
            md += ["", f"Throughput plot: {page} (offline HTML) and {out / 'throughput.png'}."]
        except DvcError as e:  # a plot missing on one side must not hide the comparison
            warnings.append(str(e))
    if warnings:
        md += ["", "### Warnings", ""] + [f"- {w}" for w in warnings]
    text = "\n".join(md) + "\n"
    reasons = gate(judged, accuracy, cfg)
    write_bytes_atomic(out / "compare.md", text.encode())
    write_json_atomic(out / "compare.json", {
        "base": base, "head": head, "summary": summary_line(judged, accuracy),
        "rules": {**asdict(cfg), "level": LEVEL, "from": f"{head}:{paths.PARAMS}"},
        "gate": {"fail_on": fail_on, "passed": not reasons, "reasons": reasons},
        "verdicts": [asdict(j) for j in judged],
        "accuracy": [{**asdict(a), "top1_drop": a.top1_drop} for a in accuracy], "fetch": fetch_commands(accuracy),
        "numbers": [{**asdict(r), "delta": r.delta, "pct": r.pct} for r in rows],
        "params": params, metrics.RANDOM_WEIGHTS: sorted(random), "warnings": warnings})
    return Comparison(text, warnings, why)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", nargs="?", help="base revision (branch, tag, commit)")
    p.add_argument("head", nargs="?", help="revision to compare against BASE (default: the workspace)")
    p.add_argument("--out", type=Path, help="output dir (default reports/compare; reports/plots for --plots-only)")
    p.add_argument("--fail-on", choices=FAIL_ON,
                   help="exit 1 when a speed verdict is `regressed` or top-1 fell by more than "
                        "compare.max_accuracy_drop (HEAD's params.yaml)")
    p.add_argument("--no-plots", action="store_true", help="no throughput plot")
    p.add_argument("--plots-only", action="store_true", help="render this workspace's throughput plot offline")


def run(args: argparse.Namespace) -> int:
    if args.plots_only:
        page = render_plots(None, args.out or Path("reports/plots"))
        print(f"throughput plot (offline): {page}")
        return 0
    if not args.base:
        raise ValueError("usage: omzoo compare BASE [HEAD] [--out DIR] [--fail-on regression] (or --plots-only)")
    result = compare(args.base, args.head or "workspace", args.out or Path("reports/compare"),
                     plots=not args.no_plots, fail_on=args.fail_on)
    print(result.text, end="")
    for w in result.warnings:
        print(f"omzoo compare: warning: {w}", file=sys.stderr)
    if args.fail_on and result.failed:
        print(f"omzoo compare: gate failed: {result.failed}", file=sys.stderr)
        return 1
    return 0
