"""The markdown of `omzoo compare` (omzoo.results.compare_markdown): the summary paragraph, the tables, and the
order of the sections."""

from __future__ import annotations

import re

from rounds_helpers import judged, side

from omzoo.results.accuracy import Accuracy
from omzoo.results.compare_markdown import (
    accuracy_section,
    markdown,
    numbers_tables,
    params_table,
    resolution_hint,
    summary_line,
    verdict_table,
)
from omzoo.results.diffs import Row
from omzoo.results.gate import gate
from omzoo.results.rules import TIMED, CompareConfig, Rules
from omzoo.results.verdicts import Side


def test_summary_leads_with_counts() -> None:
    rows = judged(side(), side(0.5)) + judged(side(), side(contended=True)) + judged(side(), side())
    same = Accuracy("a", "identical", n_images=64)
    text = summary_line(rows, [same, Accuracy("b", "different data")])
    assert text == ("4 regressed, 0 improved, 4 unchanged, 4 inconclusive (of 12 speed numbers); "
                    "accuracy: identical for a on 64 images; b not compared (different data).")
    other = judged(side(host={"device": "a"}), side(host={"device": "b"}))
    assert summary_line(other, [same]) == ("Nothing could be judged: 0 regressed, 0 improved, 0 unchanged, 4 "
                                           "inconclusive (of 4 speed numbers); accuracy: identical for a on 64 images.")
    assert not summary_line(other + rows[:1], [same]).startswith("Nothing")


def test_summary_words_each_accuracy_change() -> None:
    changed = Accuracy("c", "changed", n_images=16, topk={"top1": {"old": 75.0, "new": 68.75}}, n_changed_top1=3,
                       right_to_wrong=2, wrong_to_right=1)
    unread = Accuracy("d", "changed", topk={"top1": {"old": 75.0, "new": 70.0}})
    grouped = [Accuracy(m, "same top-k", n_images=n) for m, n in (("e", 8), ("f", 16))]
    assert summary_line([], [changed, unread, *grouped]) == (
        "0 regressed, 0 improved, 0 unchanged, 0 inconclusive (of 0 speed numbers); accuracy: same top-1..5, "
        "per-image predictions not readable here for e, f; c top-1 75.00 → 68.75 % (3 of 16 images changed top-1: "
        "2 right→wrong, 1 wrong→right); d top-1 75.00 → 70.00 %, per-image predictions not readable here.")
    assert summary_line([], []).endswith("accuracy: no model evaluated.")


def test_the_verdict_table_shows_the_interval_once_and_why() -> None:
    worse = judged(side(), side(0.5))[0]
    table = verdict_table([worse, judged(side(), Side(missing="not measured"))[0]], "main", "slow")
    header, _, row, inconclusive = table.splitlines()
    assert re.match(r"\| verdict +\| model +\| bs +\| metric +\| old \(main\) +\| new \(slow\) +\| ratio +\| "
                    r"interval \(coverage\) +\| why +\|$", header)
    assert re.match(rf"\| regressed +\| m +\| 8 +\| throughput_compute_ips \(img/s ↑\) +\| {worse.old:.1f} +\| "
                    rf"{worse.new:.1f} +\| 0\.500 +\| \[{worse.ci_low:.3f}, {worse.ci_high:.3f}\] 88% +\| "
                    rf"excludes 1: at least \d\d\.\d% +\|$", row), row
    assert "ratio 0.5" not in row  # the reason's interval is in its own columns, not repeated
    assert re.search(r"\| inconclusive +\| m +\| 8 +\| throughput_compute_ips \(img/s ↑\) +\| 100\.2 +\| – +\| – +\| "
                     r"– +\| head not measured +\|$", inconclusive), inconclusive  # BASE's value, no ratio


def test_accuracy_section_lists_changed_images_notes_and_fetches() -> None:
    changed = Accuracy("c", "changed", n_images=16, topk={"top1": {"old": 75.0, "new": 68.75}}, n_changed_top1=3,
                       right_to_wrong=2, wrong_to_right=1,
                       changed=[{"name": "a.jpg", "label": 1, "old": 1, "new": 3},
                                {"name": "b.jpg", "label": None, "old": 4, "new": 3}])
    other = Accuracy("o", "different data", topk={"top1": {"old": 75.0, "new": 10.0}}, note="not compared: x")
    unread = Accuracy("u", "same top-k", fetch_targets={"main": "models/infer/u", "workspace": "models/infer/u"})
    lines = accuracy_section([changed, other, unread], {"u"})
    text = "\n".join(lines)
    assert lines[0] == "### Accuracy (exact counts on the same images)"
    assert "Random weights for u: accuracy means nothing" in text
    assert re.search(r"\| c +\| changed +\| 16 +\| 75\.00 → 68\.75 +\| – +\| 3 +\| 2 +\| 1 +\|", text)
    assert re.search(r"\| o +\| different data +\| – +\| – +\| – +\|", text)  # no numbers side by side
    assert "- c, changed top-1 (first 2 of 3): `a.jpg` 1→3 (label 1), `b.jpg` 4→3" in lines
    assert "- o: not compared: x" in lines
    assert "- Per-image predictions at main are in neither this DVC cache nor a remote reachable here: `git checkout " \
        "main && dvc fetch models/infer/u && git checkout -` (after `dvc push` where main ran, if no remote holds " \
        "them)." in lines
    assert "- Per-image predictions at workspace are in neither this DVC cache nor a remote reachable here: " \
        "`dvc pull models/infer/u` (or run the infer stages)." in lines
    assert accuracy_section([], set())[-1] == "No model in either revision's params."


def test_numbers_and_params_tables() -> None:
    rows = [Row("m", "accuracy", None, "top1", 70.0, 71.4), Row("m", "throughput", 8, "e2e_ms.p99", 10.0, None)]
    acc, speed = numbers_tables(rows, "a", "b").split("\n\n")
    assert re.search(r"\| m +\| top1 \(% ↑\) +\| 70\.00 +\| 71\.40 +\| \+1\.40 +\| \+2\.0 % +\|", acc), acc
    assert re.search(r"\| m +\| 8 +\| e2e_ms\.p99 \(ms ↓\) +\| 10\.00 +\| – +\| – +\| – +\|", speed), speed
    assert numbers_tables([], "a", "b") == "No accuracy metrics in either revision.\n\n" \
        "No throughput metrics in either revision."
    assert params_table([], "a", "b") == "No parameter differs."
    table = params_table([{"file": "params.yaml", "param": "toolkit.version", "old": "8.0", "new": "8.1"}], "a", "b")
    assert re.search(r"\| params\.yaml +\| toolkit\.version +\| 8\.0 +\| 8\.1 +\|", table)


REFERENCE = Rules(CompareConfig(), "main:compare", [])  # BASE's defaults, HEAD asking for nothing


def _markdown(rows: list, fail_on: str | None = "regression", reasons: list[str] | None = None,
              rules: Rules = REFERENCE) -> str:
    return "\n".join(markdown("main", "slow", rules, rows, [], [], set(), [], fail_on, reasons or []))


def test_the_markdown_puts_regressions_first_and_collapses_the_unchanged() -> None:
    rows = judged(side(0.5), side()) + judged(side(), side(0.5)) + judged(side(), side())
    md = _markdown(rows, reasons=gate(rows, [], 0.0))
    assert md.startswith("## omzoo compare: main → slow\n\n**Summary.** 4 regressed, 4 improved, 4 unchanged")
    assert "**Gate** (`--fail-on regression`): **failed**: 4 speed numbers regressed." in md
    assert "at least 3% away from 1" in md and "fewer than 5 rounds" in md and "widened by the drift between runs " \
        "(±8%)" in md and "`compare:` in main's params.yaml (the reference; HEAD may only tighten them)" in md
    assert "**Rules.**" not in md  # HEAD asked for nothing BASE does not have
    shown = md.split("### Verdicts")[1].split("<details>")[0]
    assert shown.index("| regressed ") < shown.index("| improved ") and "| unchanged " not in shown
    assert "<summary>4 unchanged</summary>" in md
    assert md.index("### Verdicts") < md.index("### Accuracy") < md.index("### Numbers") < md.index("### Parameters")
    passed = _markdown([])
    assert "**Gate** (`--fail-on regression`): passed." in passed
    assert "No speed number regressed, improved or was inconclusive." in passed
    assert "**Gate**" not in _markdown([], None)
    assert "**Gate** (`--fail-on inconclusive`): **failed**: x." in _markdown([], "inconclusive", ["x"])


def test_the_markdown_names_what_head_asked_for_that_was_ignored() -> None:
    notes = ["slow's compare.min_effect 0.9 would loosen main's 0.03: ignored (the rules are the reference's, main)"]
    md = _markdown(judged(side(), side(0.5)), rules=Rules(CompareConfig(), "main:compare", notes))
    assert f"**Rules.** {notes[0]}." in md
    assert md.index("**Summary.**") < md.index("**Rules.**") < md.index("### Verdicts")


def test_the_resolution_points_to_abtest_where_two_runs_cannot_tell() -> None:
    clear = judged(side(), side(0.5)) + judged(side(), side())  # 2 % spread, 5 rounds: intervals within ±3 %
    assert resolution_hint(clear, CompareConfig()) == []
    assert "**Resolution.**" not in _markdown(clear)
    noisy = judged(side(spread=0.2), side(spread=0.2, seed=1))  # unchanged, but the interval spans far more
    assert {j.verdict for j in noisy} == {"unchanged"}
    hint = resolution_hint(clear + noisy + judged(side(), side(contended=True)), CompareConfig())
    assert hint[1].startswith(f"**Resolution.** {2 * len(TIMED)} of {4 * len(TIMED)} speed numbers cannot be "
                              "resolved by two separate runs")
    assert "drift apart by up to 8% here" in hint[1] and "`omzoo abtest BASE HEAD` (`make abtest`)" in hint[1]
    md = _markdown(noisy)
    assert md.index("**Summary.**") < md.index("**Resolution.**") < md.index("### Verdicts")
