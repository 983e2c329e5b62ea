"""The markdown of `omzoo compare` (also <out>/compare.md, short enough to post as a CI comment): the summary, the
gate, the speed verdicts with regressions first, accuracy, then the raw numbers and the params."""

from __future__ import annotations

from collections import Counter

from omzoo.core import metrics
from omzoo.core.metrics import Metric, fmt
from omzoo.results.accuracy import Accuracy, fetch_commands
from omzoo.results.diffs import Row
from omzoo.results.gate import gate_line
from omzoo.results.rules import ACCURACY, TIMED, CompareConfig, Rules
from omzoo.results.verdicts import OUTCOMES, Judged

#: accuracy outcomes the summary groups (models listed together), and how it words them
GROUPED = {"identical": "identical", "same top-k": "same top-1..5, per-image predictions not readable here"}


def _label(m: Metric) -> str:
    """`e2e_ms.p99 (ms ↓)`: the name, its unit and which way is better."""
    arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
    return f"{m.name} ({m.unit}{arrow})" if m.unit or arrow else m.name


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


def verdict_table(rows: list[Judged], base: str, head: str) -> str:
    """The speed verdicts as a GitHub table: old and new medians, the ratio, its interval, and stats' reason."""
    from tabulate import tabulate

    schema = {m.name: m for m in TIMED}

    def cells(j: Judged) -> list[str]:
        d = schema[j.metric].digits
        interval = "–" if j.ci_low is None or j.coverage is None else \
            f"[{j.ci_low:.3f}, {j.ci_high:.3f}] {j.coverage:.0%}"
        return [j.verdict, j.model, str(j.bs), _label(schema[j.metric]), fmt(j.old, d), fmt(j.new, d),
                fmt(j.ratio, 3), interval, j.why]

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
    nothing = "Nothing could be judged: " if judged and counts["inconclusive"] == len(judged) else ""
    return f"{nothing}{speed} (of {len(judged)} speed numbers); accuracy: {'; '.join(parts) or 'no model evaluated'}."


def accuracy_section(accuracy: list[Accuracy], random: set[str]) -> list[str]:
    """The accuracy table per model (at each precision; one other than fp32 with its top-1 agreement with fp32), then
    the changed images by name, the notes and the fetch commands."""
    from tabulate import tabulate

    def cell(v: int | None) -> str:
        return "–" if v is None else str(v)

    top = [ACCURACY[0].name, ACCURACY[4].name]  # top-1 and top-5, what the guides publish
    if any(a.topk.get(metrics.AGREEMENT_TOP1) for a in accuracy):  # a precision other than fp32 is compared
        top.append(metrics.AGREEMENT_TOP1)

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


def _details(summary: str, body: str) -> list[str]:
    """A collapsed block in a GitHub comment (blank lines around the markdown inside, or it is not rendered)."""
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>"]


def params_table(rows: list[dict[str, str]], base: str, head: str) -> str:
    """The parameters that differ, as a GitHub table."""
    from tabulate import tabulate

    if not rows:
        return "No parameter differs."
    return tabulate([[r["file"], r["param"], r["old"], r["new"]] for r in rows],
                    ["file", "param", f"old ({base})", f"new ({head})"], tablefmt="github", disable_numparse=True)


def headline(title: str, judged: list[Judged], accuracy: list[Accuracy], notes: list[str],
             fail_on: str | None, reasons: list[str]) -> list[str]:
    """The top of compare.md and abtest's: the summary, the gate (when asked for) and the rules HEAD asked for
    that were not taken; `reasons` are the gate's (none: it passes)."""
    md = [f"## {title}", "", f"**Summary.** {summary_line(judged, accuracy)}"]
    if fail_on is not None:
        md += ["", f"**Gate** (`--fail-on {fail_on}`): " + (f"**failed**: {gate_line(reasons)}." if reasons
                                                             else "passed.")]
    if notes:
        md += ["", "**Rules.** " + " ".join(f"{n}." for n in notes)]
    return md


def verdict_sections(judged: list[Judged], base: str, head: str) -> list[str]:
    """The verdict table, regressions first, with the unchanged ones collapsed."""
    order = {o: i for i, o in enumerate(OUTCOMES)}
    shown = sorted((j for j in judged if j.verdict != "unchanged"), key=lambda j: order[j.verdict])
    md = ["### Verdicts", "", verdict_table(shown, base, head) if shown else
          "No speed number regressed, improved or was inconclusive."]
    unchanged = [j for j in judged if j.verdict == "unchanged"]
    if unchanged:
        md += [""] + _details(f"{len(unchanged)} unchanged", verdict_table(unchanged, base, head))
    return md


def resolution_hint(judged: list[Judged], cfg: CompareConfig) -> list[str]:
    """Where two runs cannot resolve a verdict, say so and point to paired rounds on one host."""
    blind = [j for j in judged if j.verdict == "inconclusive" or (
        j.verdict == "unchanged" and j.ci_low is not None and j.ci_high is not None and
        (j.ci_high - j.ci_low) / 2 > cfg.min_effect)]
    if not blind:
        return []
    return ["", f"**Resolution.** {len(blind)} of {len(judged)} speed numbers cannot be resolved by two separate "
            f"runs: their intervals are wider than ±{cfg.min_effect:.0%}, or they could not be judged, and two runs "
            f"of one commit drift apart by up to {cfg.drift:.0%} here, which no interval from within each run "
            "shows. For a verdict to trust, measure both revisions on one host in paired, interleaved rounds: "
            "`omzoo abtest BASE HEAD` (`make abtest`)."]


def markdown(base: str, head: str, rules: Rules, judged: list[Judged], accuracy: list[Accuracy],
             rows: list[Row], random: set[str], params: list[dict[str, str]], fail_on: str | None,
             reasons: list[str]) -> list[str]:
    """Summary (and the gate, when asked), the verdicts with regressions first, accuracy, then the raw numbers and
    the params."""
    cfg = rules.config
    md = headline(f"omzoo compare: {base} → {head}", judged, accuracy, rules.notes, fail_on, reasons)
    md += resolution_hint(judged, cfg)
    md += ["", f"Speed verdicts judge the kept benchmark rounds of two separate runs: HEAD/BASE of the medians with "
           f"an order-statistic interval (distribution-free, coverage shown), widened by the drift between runs "
           f"(±{cfg.drift:.0%}); a change needs that whole interval at least {cfg.min_effect:.0%} away from 1. A "
           f"contended or failed side, one with fewer than {cfg.min_rounds} rounds, or results from different "
           f"hosts are inconclusive. Rules: `compare:` in {rules.source.split(':')[0]}'s params.yaml (the "
           "reference; HEAD may only tighten them).", ""]
    md += verdict_sections(judged, base, head)
    md += [""] + accuracy_section(accuracy, random)
    md += ["", "### Numbers", ""] + _details("every compared metric, old and new (dvc metrics diff)",
                                             numbers_tables(rows, base, head))
    return md + ["", "### Parameters", "", params_table(params, base, head)]
