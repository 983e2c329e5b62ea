"""The CI gate (omzoo.results.gate): every regressed number and every top-1 drop beyond the allowance, and the
short line the markdown and stderr carry."""

from __future__ import annotations

from rounds_helpers import judged, side, top1

from omzoo.results.gate import gate, gate_line
from omzoo.results.rules import TIMED, CompareConfig


def test_every_regressed_number_fails_the_gate_by_name() -> None:
    rows = judged(side(), side(0.5))
    reasons = gate(rows, [], CompareConfig())
    assert len(reasons) == len(TIMED)
    tput = next(j for j in rows if j.metric == "throughput_compute_ips")
    assert f"m bs8 throughput_compute_ips regressed: ratio 0.500 [{tput.ci_low:.3f}, {tput.ci_high:.3f}]" in reasons
    assert gate(judged(side(0.5), side()), [], CompareConfig()) == []  # improved
    contended, few = judged(side(), side(0.5, contended=True)), judged(side(rounds=3), side(0.5))
    assert gate(contended + few, [], CompareConfig()) == []  # inconclusive never fails it


def test_the_accuracy_gate_counts_one_image_and_ignores_other_data() -> None:
    one_image = top1(75.0, 73.4375)  # 1 of 64 images right→wrong
    assert gate([], [one_image], CompareConfig()) == [
        "m top-1 fell 1.56 points (75.00 → 73.44 %), more than compare.max_accuracy_drop 0"]
    assert gate([], [one_image], CompareConfig(max_accuracy_drop=2.0)) == []
    assert gate([], [top1(75.0, 75.0, "identical"), top1(75.0, 76.0)], CompareConfig()) == []
    assert gate([], [top1(75.0, 50.0, "different data")], CompareConfig()) == []


def test_the_gate_line_counts_numbers_and_names_accuracy_drops() -> None:
    slow = judged(side(), side(0.5))
    assert gate_line(slow, [top1(75.0, 68.75, model="a")], CompareConfig()) == (
        f"{len(TIMED)} speed numbers regressed; a top-1 fell 6.25 points (75.00 → 68.75 %), more than "
        "compare.max_accuracy_drop 0")
    assert gate_line(slow[:1], [], CompareConfig()) == "1 speed number regressed"
    assert gate_line(judged(side(), side()), [top1(75.0, 75.0)], CompareConfig()) == ""
