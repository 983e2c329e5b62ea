"""The CI gate (omzoo.results.gate), which fails closed: every regressed number, every top-1 drop beyond the
allowance, every number whose evidence is broken or spoiled, nothing judged at all; at `--fail-on inconclusive`
also every number that could not be judged. Then the short line the markdown and stderr carry."""

from __future__ import annotations

import pytest
from rounds_helpers import judged, side, top1

from omzoo.results.accuracy import Accuracy
from omzoo.results.gate import FAIL_ON, gate, gate_line
from omzoo.results.rules import TIMED
from omzoo.results.verdicts import Side

BROKEN = "head:metrics/rounds/m-8.json not valid JSON (Expecting value: line 1 column 1 (char 0))"


def test_every_regressed_number_fails_the_gate_by_name() -> None:
    rows = judged(side(), side(0.5))
    reasons = gate(rows, [], 0.0)
    assert len(reasons) == len(TIMED)
    tput = next(j for j in rows if j.metric == "throughput_compute_ips")
    assert f"m bs8 throughput_compute_ips regressed: ratio 0.500 [{tput.ci_low:.3f}, {tput.ci_high:.3f}]" in reasons
    assert gate(judged(side(0.5), side()), [], 0.0) == []  # improved
    assert gate(judged(side(), side()), [], 0.0, "inconclusive") == []  # unchanged passes at either level


def test_spoiled_or_broken_evidence_fails_the_gate_naming_it() -> None:
    """A contended side or too few rounds is never `regressed`, but a gate must not pass on it either."""
    contended, few = judged(side(), side(0.5, contended=True)), judged(side(rounds=3), side(0.5))
    reasons = gate(contended + few + judged(side(), side()), [], 0.0)
    assert len(reasons) == 2 * len(TIMED)
    assert "m bs8 throughput_compute_ips: head contended" in reasons
    assert any(r.startswith("m bs8 e2e_ms.p99: base has 3 rounds < 5") for r in reasons)
    broken = judged(side(), Side(missing="unreadable", problem=BROKEN, where="head:metrics/bench/m-8.json"))
    assert gate(broken + judged(side(), side()), [], 0.0) == [f"m bs8 {m.name}: {BROKEN}" for m in TIMED]


def test_nothing_judged_fails_even_at_regression() -> None:
    other = judged(side(host={"device": "a"}), side(0.5, host={"device": "b"}))
    assert {j.verdict for j in other} == {"inconclusive"} and not any(j.evidence for j in other)
    assert gate(other, [], 0.0) == [f"no speed number could be judged ({len(TIMED)} inconclusive)"]
    assert gate(other + judged(side(), side()), [], 0.0) == []  # one judged point: the other host is a report
    at_inconclusive = gate(other + judged(side(), side()), [], 0.0, "inconclusive")
    assert len(at_inconclusive) == len(TIMED)
    assert all(" inconclusive: different host: device 'a' vs 'b'" in r for r in at_inconclusive)
    assert gate([], [], 0.0) == []  # no point in either params: nothing to judge, nothing failed


def test_inconclusive_level_fails_on_every_number_not_judged_once() -> None:
    unasked = judged(side(), Side(missing="not measured"))  # a point only BASE asks for
    assert gate(unasked + judged(side(), side()), [], 0.0) == []
    assert gate(unasked + judged(side(), side()), [], 0.0, "inconclusive") == [
        f"m bs8 {m.name} inconclusive: head not measured" for m in TIMED]
    contended = judged(side(), side(contended=True))  # named once, as evidence, not again as inconclusive
    assert gate(contended, [], 0.0, "inconclusive") == gate(contended, [], 0.0) and \
        len(gate(contended, [], 0.0)) == len(TIMED) + 1
    other_data = Accuracy("m", "different data", note="not compared: d1 vs d2")
    assert gate([], [other_data], 0.0) == []
    assert gate([], [other_data], 0.0, "inconclusive") == [
        "m accuracy not compared: different data: not compared: d1 vs d2"]
    with pytest.raises(ValueError, match="--fail-on must be one of regression, inconclusive, got 'everything'"):
        gate([], [], 0.0, "everything")
    assert FAIL_ON == ("regression", "inconclusive")


def test_the_accuracy_gate_counts_one_image_and_ignores_other_data() -> None:
    one_image = top1(75.0, 73.4375)  # 1 of 64 images right→wrong
    assert gate([], [one_image], 0.0) == [
        "m top-1 fell 1.56 points (75.00 → 73.44 %), more than compare.max_accuracy_drop 0"]
    assert gate([], [one_image], 2.0) == []
    assert gate([], [top1(75.0, 75.0, "identical"), top1(75.0, 76.0)], 0.0) == []
    assert gate([], [top1(75.0, 50.0, "different data")], 0.0) == []


def test_an_eval_file_that_cannot_serve_fails_the_gate() -> None:
    gone = Accuracy("m", "not evaluated", problem="head:metrics/eval/m.json missing")
    assert gate([], [gone], 0.0) == ["m accuracy: head:metrics/eval/m.json missing"]
    assert gate([], [gone], 0.0, "inconclusive") == gate([], [gone], 0.0)  # named once


def test_the_gate_line_counts_numbers_and_names_the_rest() -> None:
    slow = judged(side(), side(0.5))
    assert gate_line(gate(slow, [top1(75.0, 68.75, model="a")], 0.0)) == (
        f"{len(TIMED)} speed numbers regressed; a top-1 fell 6.25 points (75.00 → 68.75 %), more than "
        "compare.max_accuracy_drop 0")
    assert gate_line(gate(slow[:1], [], 0.0)) == "1 speed number regressed"
    assert gate_line(gate(judged(side(), side()), [top1(75.0, 75.0)], 0.0)) == ""
    many = gate(judged(side(), side(contended=True)), [], 0.0)
    assert gate_line(many) == "; ".join(many[:3]) + f"; and {len(many) - 3} more"
    assert "head contended" in gate_line(many)
