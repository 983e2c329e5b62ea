"""The whole comparison of two revisions: speed verdicts, accuracy, the raw numbers, the params, the plot, the gate;
written to <out>/compare.md and <out>/compare.json with the plot's files, all in one commit.

Metrics, rounds, info files and the plot's CSV are committed (`cache: false`), so everything but the per-image
predictions is read from git on any clone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from omzoo.core import metrics, paths
from omzoo.core.io import claim_folder, json_bytes, write_files_atomic
from omzoo.results.accuracy import compare_accuracy, fetch_commands
from omzoo.results.compare_markdown import markdown, summary_line
from omzoo.results.diffs import metrics_diff, params_diff
from omzoo.results.fingerprints import revision_fingerprint
from omzoo.results.gate import gate, gate_line
from omzoo.results.plots import plot_files
from omzoo.results.revisions import DvcError, check_revision, read_params
from omzoo.results.rules import LEVEL, declared, points, rules
from omzoo.results.verdicts import verdicts


@dataclass(frozen=True)
class Comparison:
    text: str  # the markdown, also <out>/compare.md
    warnings: list[str]
    failed: str  # why the gate fails, short; "" = it passes


def compare(base: str, head: str, out: Path, plots: bool = True, fail_on: str | None = None) -> Comparison:
    """The whole comparison: markdown to <out>/compare.md, every row to <out>/compare.json."""
    for rev in (base, head):
        check_revision(rev)
        revision_fingerprint(rev)  # each side's results come from one toolkit on one host
    claim_folder(out, "compare")
    ruling = rules(base, head)
    cfg = ruling.config
    models, keys = points(base, head)
    asked = {rev: declared(read_params(rev)) for rev in (base, head)}
    judged = verdicts(base, head, keys, cfg, {rev: set(k) for rev, (_, k) in asked.items()})
    accuracy = [compare_accuracy(base, head, m, cfg, {rev: set(ms) for rev, (ms, _) in asked.items()})
                for m in models]
    rows, random, warnings = metrics_diff(base, head)
    rows = [r for r in rows if r.model in models and (r.bs is None or (r.model, r.bs) in keys)]
    params = params_diff(base, head)
    reasons = gate(judged, accuracy, cfg.max_accuracy_drop, fail_on or "regression")
    md = markdown(base, head, ruling, judged, accuracy, rows, random, params, fail_on, reasons)
    files: dict[Path, bytes] = {}  # the plot's, then the markdown and json: all committed together
    if plots:
        try:
            files = plot_files([base, head], out)
            md += ["", f"Throughput plot: {out / 'index.html'} (offline HTML) and {out / 'throughput.png'}."]
        except DvcError as e:  # a plot missing on one side must not hide the comparison
            warnings.append(str(e))
    if warnings:
        md += ["", "### Warnings", ""] + [f"- {w}" for w in warnings]
    text = "\n".join(md) + "\n"
    write_files_atomic({**files, out / "compare.md": text.encode(), out / "compare.json": json_bytes({
        "base": base, "head": head, "summary": summary_line(judged, accuracy),
        "method": "blocked", "rules": {**asdict(cfg), "level": LEVEL, "from": f"{base}:{paths.PARAMS}",
                                        "notes": ruling.notes},
        "gate": {"fail_on": fail_on, "passed": not reasons, "reasons": reasons},
        "verdicts": [asdict(j) for j in judged],
        "accuracy": [{**asdict(a), "top1_drop": a.top1_drop} for a in accuracy], "fetch": fetch_commands(accuracy),
        "numbers": [{**asdict(r), "delta": r.delta, "pct": r.pct} for r in rows],
        "params": params, metrics.RANDOM_WEIGHTS: sorted(random), "warnings": warnings})})
    return Comparison(text, warnings, gate_line(reasons))
