"""`omzoo abtest BASE HEAD`: both revisions on this host, in paired interleaved rounds; verdicts, per-image accuracy
changes in the same run, and the gate (README, Comparing toolkits).

Each side is made runnable here (omzoo.results.worktree), gets one worker process per (model, bs) holding its
session (omzoo.timing.pairs), and the pairs decide. The rows are compare's (results.verdicts.Judged), judged by
compare's rule (stats.judge) with `abtest.min_effect`; the rules are BASE's `abtest:` and `bench:`, which a HEAD may
only tighten. Written to <out>: compare.md, compare.json (`method: paired`), pairs.json (every round of every pair,
the order drawn, load), and the workers' logs.
"""

from __future__ import annotations

import fnmatch
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzoo.core import paths
from omzoo.core.io import claim_folder, json_bytes, write_files_atomic
from omzoo.core.metrics import AGREEMENT_TOP1, topk_accuracy, topk_agreement
from omzoo.core.params import BenchConfig, Params, command
from omzoo.core.provenance import cpu_model, usable_cores
from omzoo.results.accuracy import Accuracy, Predictions, image_changes
from omzoo.results.compare_markdown import accuracy_section, headline, verdict_sections
from omzoo.results.gate import gate, gate_line
from omzoo.results.rules import TIMED, CompareConfig, abtest_rules, reference_rules
from omzoo.results.verdicts import Judged
from omzoo.results.worktree import Prepared, build, prepare
from omzoo.timing.pairs import INTERVAL, Launch, PairedRun, Worker, launch_env, run_pairs
from omzoo.timing.stats import judge

SRC = Path(__file__).resolve().parents[2]  # this checkout's src: both workers run its harness


@dataclass(frozen=True)
class Outcome:
    text: str
    failed: str  # why the gate fails, short; "" = it passes (or no --fail-on)


def select(base: Params, head: Params, model_glob: str, sizes: list[int] | None) -> tuple[list[tuple[str, int]],
                                                                                           list[str]]:
    """The (subject, bs) points both sides declare (a subject: a model at a precision both sides compile,
    paths.subject), filtered by `model_glob` (globs, comma-separated); and what was left out, in words."""
    both = [m for m in base.models if m in head.models]
    models = [m for m in both if any(fnmatch.fnmatchcase(m, g.strip()) for g in model_glob.split(","))]
    if not models:
        raise ValueError(f"no model matches --model {model_glob!r} in both revisions' params "
                         f"(both have: {', '.join(both) or 'none'})")
    declared = [b for b in base.batch_sizes if b in head.batch_sizes]
    chosen = declared if not sizes else [b for b in sizes if b in declared]
    notes = [f"{m}: not in both revisions' params" for m in {*base.models, *head.models} - set(both)]
    notes += [f"bs {b}: not compiled by both revisions (their batch_sizes)" for b in sizes or [] if b not in declared]
    if not chosen:
        raise ValueError(f"no batch size of {sizes} is compiled by both revisions (both have {declared})")
    precisions = [p for p in base.precisions if p in head.precisions]  # fp32 is always among them
    notes += [f"{p}: not compiled by both revisions (their precisions)"
              for p in dict.fromkeys([*base.precisions, *head.precisions]) if p not in precisions]
    return [(paths.subject(m, p), b) for m in models for p in precisions for b in chosen], notes


def _rows(model: str, bs: int, run: PairedRun, min_effect: float, level: float) -> list[Judged]:
    """One compare row per per-round metric, from the pair ratios."""
    out = []
    loaded = sum(p.loaded for p in run.pairs)
    for m in TIMED:
        iv = run.interval(m.name)
        outcome, finding = judge(iv.median, iv.low, iv.high, m.better, min_effect)
        old = float(np.median([p.base[m.name] for p in run.pairs]))
        new = float(np.median([p.head[m.name] for p in run.pairs]))
        half = (iv.high - iv.low) / 2
        notes = [f"{len(run.pairs)} pairs", f"±{half:.1%}"] + ([f"{loaded} under load on both sides"] if loaded else [])
        if run.coverage < level:
            notes.append(f"coverage {run.coverage:.1%} below the level {level:.0%}: too few pairs, raise "
                         "abtest.min_pairs")
        if outcome == "unchanged" and half > min_effect:
            notes.append(f"coarser than min_effect {min_effect:.0%}")
        why = f"{finding} ({', '.join(notes)})"
        out.append(Judged(model, bs, m.name, m.unit, m.better, old, new, iv.median, iv.low, iv.high, run.coverage,
                          None, outcome, f"ratio {iv.median:.4f} [{iv.low:.4f}, {iv.high:.4f}] "
                          f"({run.coverage:.1%}) {why}", why))
    return out


def _agreement(doc: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Top-1 agreement and top-5 overlap (percent) of one side's predictions with its own fp32 predictions."""
    same = topk_agreement(np.asarray(doc["top5"]), np.asarray(reference["top5"]))
    return {AGREEMENT_TOP1: 100 * same["top1"], "agreement_top5": 100 * same["top5"]}


def accuracy(model: str, base: dict[str, Any], head: dict[str, Any], show: int,
             reference: dict[str, dict[str, Any]] | None = None) -> Accuracy:
    """Both sides' top-k on the same shards and the images whose top-1 changed (exact counts); `reference`: each
    side's fp32 predictions, for a subject at another precision, whose agreement with them is compared too."""
    acc = Accuracy(model, n_images=len(base["names"]))
    b, h = Predictions.from_doc(base), Predictions.from_doc(head)
    if b.labels is not None:
        old, new = (topk_accuracy(np.asarray(d["top5"]), b.labels) for d in (base, head))
        acc.topk = {k: {"old": old[k], "new": new[k]} for k in old}
    if reference is not None:
        old, new = _agreement(base, reference["base"]), _agreement(head, reference["head"])
        acc.topk.update({k: {"old": old[k], "new": new[k]} for k in old})
    changes = image_changes(b, h, show)
    acc.n_changed_top1, acc.right_to_wrong = changes["n_changed_top1"], changes["right_to_wrong"]
    acc.wrong_to_right, acc.changed = changes["wrong_to_right"], changes["changed"]
    acc.status = "identical" if not acc.n_changed_top1 else "changed"
    return acc


def _launch(prep: Prepared, out: Path) -> Launch:
    return Launch(prep.side, prep.python, prep.root, launch_env(SRC), out / "logs" / f"{prep.side}.log")


def abtest(base_rev: str, head_rev: str, overrides: tuple[str, ...], model_glob: str, sizes: list[int] | None,
           out: Path, fail_on: str | None, progress: bool = True) -> Outcome:
    """The whole A/B test (module docstring)."""
    claim_folder(out, "abtest")
    log = out / "logs" / "setup.log"
    with command(()):  # -S is HEAD's alone: BASE is the reference as committed
        base = prepare("base", base_rev, (), log)
    head = prepare("head", head_rev, overrides, log)
    ruling = abtest_rules(base.params, head.params, base_rev, head_rev)
    bench_rules = reference_rules(BenchConfig, "bench", base.params, head.params, base_rev, head_rev)
    shown = reference_rules(CompareConfig, "compare", base.params, head.params, base_rev, head_rev)
    cfg, bench = ruling.config, bench_rules.config
    keys, skipped = select(base.params, head.params, model_glob, sizes)
    subjects = list(dict.fromkeys(m for m, _ in keys))
    acc_bs = {m: next(b for mm, b in keys if mm == m) for m in subjects}
    infer_bs = base.params.section("infer").get("batch_size")
    acc_bs.update({m: infer_bs for m in subjects if (m, infer_bs) in keys})
    pixels = {m: str(base.params.models[paths.parse_subject(m)[0]].get("pixels")) for m in subjects}
    for prep in (base, head):
        stages = [prep.compile_stage(model, b, precision) for m, b in keys
                  for model, precision in [paths.parse_subject(m)]]
        build(prep, stages + [f"preprocess@{p}" for p in sorted(set(pixels.values()))], log)
    judged: list[Judged] = []
    runs: list[dict[str, Any]] = []
    predictions: dict[str, dict[str, Any]] = {}
    for model, bs in keys:
        with Worker(_launch(base, out)) as wb, Worker(_launch(head, out)) as wh:
            at = paths.parse_subject(model)
            loaded = {p.side: w.load(p.compiled(at[0], bs, at[1]), bench) for p, w in ((base, wb), (head, wh))}
            run = run_pairs({"base": wb, "head": wh}, cfg, f"{model}-{bs}", progress)
            if acc_bs[model] == bs:
                shards = base.shards(pixels[model])
                predictions[model] = {"base": wb.infer(shards), "head": wh.infer(shards)}
        judged += _rows(model, bs, run, cfg.min_effect, cfg.level)
        runs.append({"model": model, "bs": bs, "stopped": run.stopped, "elapsed_s": run.elapsed_s,
                     "look_level": run.look_level, "looks": run.schedule, "coverage": run.coverage,
                     "sides": {s: {"describe": d["describe"], "toolkit_version": d["meta"].get("toolkit_version", ""),
                                   "warmup_iters": d["warmup_iters"]} for s, d in loaded.items()},
                     "pairs": [asdict(p) for p in run.pairs], "remeasured": [asdict(p) for p in run.remeasured]})
    fp32 = {m: paths.subject(paths.parse_subject(m)[0]) for m in predictions}  # each subject's fp32 subject
    acc = [accuracy(m, p["base"], p["head"], shown.config.show_images,
                    None if fp32[m] == m else predictions.get(fp32[m])) for m, p in predictions.items()]
    reasons = gate(judged, acc, shown.config.max_accuracy_drop, fail_on or "regression")
    notes = ruling.notes + bench_rules.notes + shown.notes
    host = f"{platform.node()}: {cpu_model()}, {usable_cores()} usable cores"
    title = f"omzoo abtest: {base_rev} → {head_rev}" + "".join(f" -S {o}" for o in overrides)
    md = headline(title, judged, acc, notes, fail_on, reasons)
    md += ["", f"Both sides on one host ({host}), one worker process each, rounds in pairs in a seeded random order "
           f"(abtest.seed {cfg.seed}): HEAD/BASE per pair, their median with the sign-test interval; pairs were "
           f"added until the interval was narrower than ±{cfg.min_effect:.0%} or a budget was spent "
           f"({cfg.max_pairs} pairs, {cfg.max_s:g} s per point), each look at the level that keeps "
           f"{cfg.level:.0%} over all looks together. Rules: `abtest:` and `bench:` in {base_rev}'s params.yaml "
           "(the reference; HEAD may only tighten them).", ""]
    md += verdict_sections(judged, base_rev, head_rev)
    md += [""] + accuracy_section(acc, set())
    stops = [f"{r['model']} bs{r['bs']} after {len(r['pairs'])} pairs, {r['elapsed_s']:.0f} s ({r['stopped']}; "
             f"{len(r['remeasured'])} measured again)" for r in runs]
    md += ["", "Stopped: " + "; ".join(stops) + "."]
    if skipped:
        md += ["", "Not tested: " + "; ".join(sorted(skipped)) + "."]
    text = "\n".join(md) + "\n"
    sides = {p.side: {"rev": p.rev, "commit": p.commit, "root": str(p.root), "python": p.python}
             for p in (base, head)}
    write_files_atomic({out / "pairs.json": json_bytes({"interval": INTERVAL, "points": runs}),
                        out / "compare.md": text.encode(), out / "compare.json": json_bytes({
        "method": "paired", "base": base_rev, "head": head_rev, "overrides": list(overrides), "host": host,
        "sides": sides, "summary": md[2].removeprefix("**Summary.** "),
        "rules": {**asdict(cfg), "bench": asdict(bench), "from": f"{base_rev}:params.yaml", "notes": notes},
        "gate": {"fail_on": fail_on, "passed": not reasons, "reasons": reasons},
        "verdicts": [asdict(j) for j in judged],
        "accuracy": [{**asdict(a), "top1_drop": a.top1_drop} for a in acc]})})
    return Outcome(text, gate_line(reasons) if fail_on else "")
