"""Median intervals, ratio intervals and verdicts over benchmark rounds (omzoo.timing.stats; docs/benchmarking.md
R9-R10).

Every random draw is seeded: the tests are deterministic, and the Monte Carlo ones use enough trials that the
tolerances sit several standard errors away from the expected values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from omzoo.timing.stats import (
    _u_counts,
    judge,
    look_level,
    looks,
    mann_whitney_p,
    median_interval,
    order_statistic_coverage,
    ratio_interval,
    verdict,
)

BASE5 = [100.0, 102.0, 98.0, 101.0, 99.0]  # throughput rounds, img/s
HALF5 = [x / 2 for x in BASE5]


def lognormal_rounds(rng: np.random.Generator, median: float, n: int, sigma: float = 0.05) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


# ------------------------------------------------------------------------------------------ median interval


def test_coverage_numbers_of_r9() -> None:
    assert order_statistic_coverage(5, 1) == pytest.approx(0.9375)  # 93.8 %
    assert order_statistic_coverage(6, 1) == pytest.approx(0.96875)  # 96.9 %
    assert order_statistic_coverage(8, 2) == pytest.approx(0.9296875)  # [x(2), x(7)]: 93.0 %
    assert order_statistic_coverage(9, 2) == pytest.approx(0.9609375)  # [x(2), x(8)]: 96.1 %
    assert order_statistic_coverage(9, 5) == 0.0  # the median alone
    with pytest.raises(ValueError):
        order_statistic_coverage(5, 4)


@pytest.mark.parametrize(("n", "low", "high", "coverage"), [
    (5, 1, 5, 0.9375),  # 95 % unreachable: widest pair and the coverage it really has
    (6, 1, 6, 0.96875),
    (7, 1, 7, 0.984375),
    (8, 1, 8, 0.9921875),  # [x(2), x(7)] covers only 93.0 % < 95 %, so the widest pair
    (9, 2, 8, 0.9609375),
    (20, 6, 15, 0.9586105346679688),
])
def test_interval_picks_narrowest_pair_reaching_the_level(n: int, low: int, high: int, coverage: float) -> None:
    ranks = np.random.default_rng(n).permutation(np.arange(1, n + 1))  # x(i) = i, handed over unsorted
    m = median_interval(ranks.tolist())
    assert (m.low, m.high, m.n) == (low, high, n)
    assert m.coverage == pytest.approx(coverage)
    assert m.median == pytest.approx((n + 1) / 2)


def test_lower_level_gives_narrower_pair() -> None:
    m = median_interval(list(range(1, 9)), level=0.90)
    assert (m.low, m.high) == (2, 7)
    assert m.coverage == pytest.approx(0.9296875)


def test_median_and_cv_of_a_known_sample() -> None:
    m = median_interval([10.0, 16.0, 12.0, 14.0])
    assert m.median == 13.0
    assert m.cv == pytest.approx(math.sqrt(20 / 3) / 13)  # sample std (ddof=1) over the mean


def test_one_round_is_a_degenerate_interval() -> None:
    m = median_interval([42.0])
    assert (m.median, m.low, m.high, m.coverage, m.n, m.cv) == (42.0, 42.0, 42.0, 0.0, 1, 0.0)


@pytest.mark.parametrize("samples", [[], [1.0, float("nan")], [1.0, -2.0], [0.0, 1.0], [[1.0, 2.0]]])
def test_rounds_that_cannot_be_measurements_are_refused(samples: list) -> None:
    with pytest.raises(ValueError):
        median_interval(samples)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_level_must_be_a_probability(level: float) -> None:
    with pytest.raises(ValueError):
        median_interval(BASE5, level)


@pytest.mark.parametrize("n", [5, 7, 9])
def test_empirical_coverage_of_the_true_median(n: int) -> None:
    """Exact for any continuous distribution: a skewed one (lognormal, true median 100) hits the stated coverage."""
    rng = np.random.default_rng(1000 + n)
    trials, hits, stated = 3000, 0, None
    for _ in range(trials):
        m = median_interval(lognormal_rounds(rng, 100.0, n, sigma=0.3).tolist())
        hits += m.low <= 100.0 <= m.high
        stated = m.coverage
    assert abs(hits / trials - stated) < 0.02  # ~4.5 standard errors


# ------------------------------------------------------------------------------------------ ratio interval


def test_ratio_interval_combines_the_two_order_statistic_intervals() -> None:
    r = ratio_interval(BASE5, HALF5)
    assert r.ratio == pytest.approx(0.5)
    assert (r.low, r.high) == (pytest.approx(49 / 102), pytest.approx(51 / 98))
    assert r.coverage == pytest.approx(0.9375**2)  # 95 % unreachable with 5 a side: 87.9 %, said so
    assert (r.base.n, r.head.n) == (5, 5)


def test_ratio_interval_reaches_the_level_with_seven_rounds() -> None:
    r = ratio_interval(list(range(1, 8)), list(range(2, 9)))
    assert r.coverage == pytest.approx(0.984375**2)
    assert r.coverage >= 0.95


@pytest.mark.parametrize("n", range(5, 10))
def test_ratio_interval_spans_the_full_ranges_below_ten_rounds(n: int) -> None:
    """What the docstring warns about: with 5-9 rounds the interval excludes 1 only when the sets do not overlap."""
    rng = np.random.default_rng(n)
    base, head = lognormal_rounds(rng, 100.0, n), lognormal_rounds(rng, 90.0, n)
    r = ratio_interval(base.tolist(), head.tolist())
    assert (r.low, r.high) == (pytest.approx(head.min() / base.max()), pytest.approx(head.max() / base.min()))
    assert ratio_interval(list(range(1, 11)), list(range(1, 11))).low == pytest.approx(2 / 9)  # [x(2), x(9)]


@pytest.mark.parametrize("n", [5, 7])
def test_ratio_coverage_is_a_lower_bound(n: int) -> None:
    rng = np.random.default_rng(2000 + n)
    trials, hits, stated = 3000, 0, None
    for _ in range(trials):
        r = ratio_interval(lognormal_rounds(rng, 100.0, n).tolist(), lognormal_rounds(rng, 80.0, n).tolist())
        hits += r.low <= 0.8 <= r.high
        stated = r.coverage
    assert hits / trials >= stated - 0.01


# ------------------------------------------------------------------------------------------ Mann-Whitney


def test_u_null_distribution_counts_every_rank_order() -> None:
    for m, n in [(1, 1), (3, 7), (5, 5), (9, 9)]:
        counts = _u_counts(m, n)
        assert len(counts) == m * n + 1
        assert sum(counts) == math.comb(m + n, m)
        assert counts == counts[::-1]
    assert _u_counts(2, 2) == [1, 1, 2, 1, 1]


def test_mann_whitney_p() -> None:
    assert mann_whitney_p(BASE5, HALF5) == pytest.approx(2 / 252)  # R10: five a side, no overlap
    assert mann_whitney_p(HALF5, BASE5) == pytest.approx(2 / 252)
    assert mann_whitney_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(2 / 20)
    assert mann_whitney_p(BASE5, BASE5) == 1.0
    assert 0.1 < mann_whitney_p(BASE5, [99.5, 100.5, 101.5, 98.5, 100.2]) <= 1.0


# ------------------------------------------------------------------------------------------ verdict


def test_same_rounds_both_sides_are_unchanged() -> None:
    v = verdict(BASE5, BASE5)
    assert v.outcome == "unchanged"
    assert v.ratio is not None and v.ratio.ratio == 1.0
    assert v.p_value == 1.0


def test_aa_false_alarms_are_rare() -> None:
    """Two independent runs of the same code, 5 rounds each, 5 % spread: almost never anything but unchanged."""
    rng = np.random.default_rng(7)
    trials = 2000
    alarms = sum(verdict(lognormal_rounds(rng, 100.0, 5).tolist(),
                         lognormal_rounds(rng, 100.0, 5).tolist()).outcome != "unchanged" for _ in range(trials))
    assert alarms / trials < 0.02  # disjoint sets happen with probability 2/252; min_effect removes more


def test_halved_throughput_is_a_regression() -> None:
    v = verdict(BASE5, HALF5, "higher")
    assert v.outcome == "regressed"
    assert v.ratio is not None and v.ratio.high < 1.0
    assert "excludes 1" in v.reason


def test_same_numbers_as_latency_are_an_improvement() -> None:
    assert verdict(BASE5, HALF5, "lower").outcome == "improved"
    assert verdict(HALF5, BASE5, "lower").outcome == "regressed"  # latency doubled
    assert verdict(HALF5, BASE5, "higher").outcome == "improved"


def test_one_percent_shift_in_noisy_rounds_is_unchanged() -> None:
    rng = np.random.default_rng(11)
    outcomes = [verdict(lognormal_rounds(rng, 100.0, 7, 0.03).tolist(),
                        lognormal_rounds(rng, 101.0, 7, 0.03).tolist()).outcome for _ in range(200)]
    assert outcomes[0] == "unchanged"
    assert outcomes.count("unchanged") >= 190


def test_real_ten_percent_regression_is_found() -> None:
    """With the bench's default 10 rounds a side and 2 % spread, a real 10 % slowdown is found."""
    rng = np.random.default_rng(12)
    outcomes = [verdict(lognormal_rounds(rng, 100.0, 10, 0.02).tolist(),
                        lognormal_rounds(rng, 90.0, 10, 0.02).tolist()).outcome for _ in range(200)]
    assert outcomes.count("regressed") >= 190


def test_clear_but_small_change_is_unchanged() -> None:
    base = [100.0, 100.1, 100.2, 100.3, 100.4]
    head = [x * 0.98 for x in base]  # every head round below every base round, but only 2 %
    v = verdict(base, head)
    assert v.ratio is not None and v.ratio.high < 1.0
    assert v.outcome == "unchanged"
    assert "min_effect" in v.reason
    assert verdict(base, head, min_effect=0.01).outcome == "regressed"


def test_effect_is_judged_on_the_intervals_near_end() -> None:
    """A 5.4 % median drop whose interval excludes 1 but reaches above 0.97 does not count: it may be as small as
    2 %, which drift between two runs explains; the same drop with tighter rounds does count."""
    base = [100.0, 101.0, 102.0, 103.0, 104.0]
    v = verdict(base, [x - 5.5 for x in base])
    assert v.ratio is not None and 0.97 < v.ratio.high < 1.0 and v.ratio.ratio < 0.95
    assert v.outcome == "unchanged" and "min_effect" in v.reason
    tight = [100.0, 100.1, 100.2, 100.3, 100.4]
    assert verdict(tight, [x - 5.5 for x in tight]).outcome == "regressed"


@pytest.mark.parametrize(("base_contended", "head_contended"), [(True, False), (False, True), (True, True)])
def test_contended_side_is_inconclusive(base_contended: bool, head_contended: bool) -> None:
    v = verdict(BASE5, HALF5, base_contended=base_contended, head_contended=head_contended)
    assert v.outcome == "inconclusive"
    assert "contended" in v.reason
    assert v.ratio is not None  # still shown, not judged


def test_too_few_rounds_are_inconclusive() -> None:
    v = verdict(BASE5, HALF5[:4])
    assert v.outcome == "inconclusive"
    assert "head has 4 rounds < 5" in v.reason
    assert verdict(BASE5, HALF5[:4], min_rounds=3).outcome == "regressed"


@pytest.mark.parametrize(("base", "head", "who"), [([], HALF5, "base"), (BASE5, [], "head"), ([], [], "base and head")])
def test_failed_side_is_inconclusive(base: list[float], head: list[float], who: str) -> None:
    v = verdict(base, head)
    assert (v.outcome, v.ratio, v.p_value) == ("inconclusive", None, None)
    assert v.reason.startswith(f"{who} failed")


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        verdict(BASE5, HALF5, "faster")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        verdict(BASE5, HALF5, min_rounds=0)
    with pytest.raises(ValueError, match="drift >= 0"):
        verdict(BASE5, HALF5, drift=-0.01)


# ------------------------------------------------------------------------------------------ the rule, and drift


@pytest.mark.parametrize(("ratio", "low", "high", "direction", "outcome", "finding"), [
    (1.0, 0.9, 1.1, "higher", "unchanged", "includes 1"),
    (1.05, 1.0, 1.1, "higher", "unchanged", "includes 1"),  # an end on 1 is inside
    (0.5, 0.45, 0.55, "higher", "regressed", "excludes 1: at least 45.0%"),
    (0.5, 0.45, 0.55, "lower", "improved", "excludes 1: at least 45.0%"),
    (2.0, 1.5, 2.5, "lower", "regressed", "excludes 1: at least 50.0%"),
    (1.04, 1.02, 1.06, "higher", "unchanged", "at least 2.0%, < min_effect 3.0%"),
    (0.97, 0.96, 0.98, "lower", "unchanged", "at least 2.0%, < min_effect 3.0%"),
    (1.5, 1.25, 1.75, "higher", "improved", "excludes 1: at least 25.0%"),
])
def test_judge_is_the_rule_on_an_interval(ratio: float, low: float, high: float, direction: str, outcome: str,
                                          finding: str) -> None:
    assert judge(ratio, low, high, direction) == (outcome, finding)  # type: ignore[arg-type]


def test_judge_counts_an_effect_of_exactly_min_effect_and_checks_its_direction() -> None:
    assert judge(1.5, 1.25, 1.75, min_effect=0.25)[0] == "improved"  # 0.25 is exact in binary
    assert judge(1.5, 1.25, 1.75, min_effect=0.26)[0] == "unchanged"
    assert judge(0.5, 0.25, 0.75, min_effect=0.25)[0] == "regressed"
    with pytest.raises(ValueError, match="direction"):
        judge(1.0, 0.9, 1.1, "faster")  # type: ignore[arg-type]


TIGHT5 = [100.0, 100.05, 100.1, 100.15, 100.2]  # rounds that agree to 0.2 %


def test_drift_widens_the_interval_on_both_sides_before_the_rule() -> None:
    """Two runs of one commit 6 % apart, each tight: a regression without the drift allowance, unchanged with it;
    the interval of the rounds themselves is still reported, and the widened one beside it."""
    later = [x * 0.94 for x in TIGHT5]
    plain = verdict(TIGHT5, later)
    assert plain.outcome == "regressed" and "drift" not in plain.reason
    v = verdict(TIGHT5, later, drift=0.08)
    r = v.ratio
    assert r is not None and r.high < 0.95  # the rounds' own interval excludes 1 by far
    assert (v.outcome, v.finding) == ("unchanged", "includes 1")
    assert v.reason == f"ratio {r.ratio:.4f} [{r.low:.4f}, {r.high:.4f}] ({r.coverage:.1%}), with drift ±8% " \
        f"[{r.low / 1.08:.4f}, {r.high * 1.08:.4f}] includes 1"
    assert verdict(TIGHT5, [x * 1.06 for x in TIGHT5], drift=0.08).outcome == "unchanged"  # either side
    assert verdict(TIGHT5, later, drift=0.05).outcome == "unchanged"  # 0.9408·1.05 > 0.97: under min_effect
    assert verdict(TIGHT5, later, drift=0.02).outcome == "regressed"


def test_drift_leaves_a_large_change_found() -> None:
    halved = verdict(TIGHT5, [x / 2 for x in TIGHT5], drift=0.08)
    r = halved.ratio
    assert r is not None and halved.outcome == "regressed"
    assert halved.finding == f"excludes 1: at least {1 - r.high * 1.08:.1%}"
    assert verdict(TIGHT5, [x / 2 for x in TIGHT5], "lower", drift=0.08).outcome == "improved"
    assert verdict(TIGHT5, [x / 2 for x in TIGHT5], drift=1.0).outcome == "unchanged"  # [0.25, 1.0]: includes 1


def test_drift_removes_aa_false_alarms_between_drifting_runs() -> None:
    """A/A runs whose level drifts by up to ±5 % between runs: the 8 % allowance keeps every pair unchanged, while
    the rounds' own intervals call a change in many pairs."""
    rng = np.random.default_rng(21)
    plain = widened = 0
    for _ in range(300):
        level = 100.0 * (1 + rng.uniform(-0.05, 0.05))
        base, head = lognormal_rounds(rng, 100.0, 10, 0.005), lognormal_rounds(rng, level, 10, 0.005)
        plain += verdict(base, head).outcome != "unchanged"
        widened += verdict(base, head, drift=0.08).outcome != "unchanged"
    assert widened == 0 and plain >= 40  # 52 with this seed


# ------------------------------------------------------------------------------------------ sequential looks


@pytest.mark.parametrize(("args", "at"), [
    ((10, 5, 40), [10, 15, 20, 25, 30, 35, 40]),
    ((10, 7, 30), [10, 17, 24, 30]),  # the budget is always the last look
    ((10, 5, 10), [10]),
    ((50, 5, 40), [40]),  # min_pairs over the budget: one look, at the budget
    ((1, 1, 3), [1, 2, 3]),
])
def test_looks_are_min_pairs_then_every_look_every_up_to_the_budget(args: tuple[int, int, int], at: list[int]) -> None:
    assert looks(*args) == at


@pytest.mark.parametrize("args", [(0, 5, 40), (10, 0, 40), (10, 5, 0), (-1, 5, 40)])
def test_looks_refuse_non_positive_counts(args: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="need min_pairs, look_every, max_pairs >= 1"):
        looks(*args)


def test_look_level_spends_the_error_over_the_looks() -> None:
    assert look_level(0.95, 1) == pytest.approx(0.95)
    assert look_level(0.95, 5) == pytest.approx(0.99)
    assert look_level(0.9, 4) == pytest.approx(0.975)
    assert look_level(0.95, 7) > look_level(0.95, 6) > look_level(0.95, 5)
    with pytest.raises(ValueError, match="at least one look"):
        look_level(0.95, 0)
    with pytest.raises(ValueError, match="level"):
        look_level(1.0, 3)


def _missed(x: np.ndarray, at: list[int], level: float) -> bool:
    """Whether some look's interval over the first n rounds misses the true median, 100."""
    return any(not (m.low <= 100.0 <= m.high) for m in (median_interval(x[:n], level) for n in at))


def test_looking_at_every_look_keeps_the_overall_coverage() -> None:
    """Optional stopping: an interval at 95 % per look misses the true median at some look far more often than
    5 %; at look_level the miss rate over all the looks together stays within 1 - level."""
    rng = np.random.default_rng(5)
    at = looks(10, 5, 40)
    trials = 1000
    naive = spent = 0
    for _ in range(trials):
        x = 100.0 + rng.standard_normal(at[-1])  # true median 100

        naive += _missed(x, at, 0.95)
        spent += _missed(x, at, look_level(0.95, len(at)))
    assert naive / trials > 0.08  # several looks at 95 % each: well over 5 % somewhere
    assert spent / trials <= 0.05 + 3 * (0.05 * 0.95 / trials) ** 0.5
