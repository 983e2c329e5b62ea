"""Statistics of repeated benchmark rounds (docs/benchmarking.md R9, R10).

One timed loop is not a measurement: on a shared machine the same commit moves by tens of per cent between runs.
A benchmark therefore runs R rounds and reports the median with a distribution-free interval, and a comparison
of two revisions says `improved` or `regressed` only when the rounds support it.

Rounds are throughputs or latencies: positive, finite numbers, one per round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Direction = Literal["higher", "lower"]
Outcome = Literal["improved", "regressed", "unchanged", "inconclusive"]
Rounds = Sequence[float] | np.ndarray  # one throughput (or latency) per round


@dataclass(frozen=True)
class MedianInterval:
    """The median of n rounds and the order-statistic interval [low, high] that covers the true median with
    probability `coverage` (exact for any continuous distribution); cv = sample std / mean over the rounds."""

    median: float
    low: float
    high: float
    coverage: float
    n: int
    cv: float


@dataclass(frozen=True)
class RatioInterval:
    """HEAD/BASE of the medians, with an interval that covers the true ratio with probability >= `coverage`.
    `base` and `head` are the per-side intervals it was built from (each at level sqrt(level))."""

    ratio: float
    low: float
    high: float
    coverage: float
    base: MedianInterval
    head: MedianInterval


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing two sets of rounds, why, and the numbers behind it.

    `ratio` is None only when a side has no rounds; `p_value` is the exact Mann-Whitney two-sided p (reported,
    not used by the rule); `finding` is the reason without the ratio interval's numbers, for a table that shows
    them in columns of their own ("" where the reason names no interval)."""

    outcome: Outcome
    reason: str
    ratio: RatioInterval | None
    p_value: float | None
    finding: str = ""


def order_statistic_coverage(n: int, k: int) -> float:
    """P(x(k) <= true median <= x(n+1-k)) for n independent rounds: 1 - 2·P(Binom(n, 1/2) <= k-1), exactly."""
    if not 1 <= k <= (n + 1) // 2:
        raise ValueError(f"need 1 <= k <= (n+1)//2, got n={n}, k={k}")
    return 1.0 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


def _rank(n: int, level: float) -> tuple[int, float]:
    """The largest k (narrowest symmetric pair) whose coverage reaches `level`, else k=1; and its coverage.
    One pass over the binomial tail in exact integers (thousands of pairs stay fast)."""
    total, term, tail = 2**n, 1, 0  # term = C(n, i); tail = sum of C(n, j) for j < k
    k, coverage = 1, 1.0 - 2 / total
    while k + 1 <= (n + 1) // 2:
        tail += term
        term = term * (n - k + 1) // k
        nxt = 1.0 - 2 * (tail + term) / total
        if nxt < level:
            break
        k, coverage = k + 1, nxt
    return k, coverage


def interval_coverage(n: int, level: float) -> float:
    """The coverage median_interval reaches with n rounds at `level` (what a look at n pairs holds)."""
    return _rank(n, level)[1]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _rounds(samples: Rounds, what: str = "samples") -> np.ndarray:
    """The rounds sorted, after refusing what cannot be a throughput or latency (a caller bug, not noise)."""
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: need a non-empty 1-D sequence of rounds, got shape {x.shape}")
    if not np.all(np.isfinite(x) & (x > 0)):
        raise ValueError(f"{what}: rounds must be positive and finite, got {x.tolist()}")
    return np.sort(x)


def median_interval(samples: Rounds, level: float = 0.95) -> MedianInterval:
    """Median of the rounds and the narrowest symmetric order-statistic pair [x(k), x(n+1-k)] covering >= level.

    Too few rounds to reach the level (R=5 gives at most 93.8 %) → [x(1), x(n)] and its actual coverage, so the
    caller can print what it got. For R=8, [x(2), x(7)] covers only 93.0 %, so a 95 % request gets
    [x(1), x(8)] at 99.2 %. One round → the degenerate interval [x, x] with coverage 0.
    """
    _check_level(level)
    x = _rounds(samples)
    n = x.size
    k, coverage = _rank(n, level)
    cv = float(x.std(ddof=1) / x.mean()) if n > 1 else 0.0
    return MedianInterval(median=float(np.median(x)), low=float(x[k - 1]), high=float(x[n - k]),
                          coverage=coverage, n=n, cv=cv)


def ratio_interval(base: Rounds, head: Rounds, level: float = 0.95) -> RatioInterval:
    """HEAD/BASE of the medians with [head.low / base.high, head.high / base.low] from the two order-statistic
    intervals, each built at level sqrt(level).

    Why not a bootstrap: it promises a coverage it cannot keep at these sizes. With 5-9 rounds a side each
    resampled median takes only a few distinct values; in simulations (lognormal and exponential rounds) the
    percentile bootstrap covered a single median only 85-88 % of the time at R=7 for a nominal 95 %, and a ratio
    91 % when the two sides' spreads differed. The combined interval is distribution-free: the sides are
    independent, and whenever both per-side intervals hold the true ratio lies inside, so `coverage` = the product
    of the two exact coverages is a guaranteed lower bound (some distributions come close to it, so it cannot be
    raised without assuming a shape).

    The price is width. Each side needs 97.5 %, which for R = 5..9 only [x(1), x(R)] reaches, so the interval
    excludes 1 only when the two sets of rounds do not overlap at all (for identical distributions: probability
    2/252 ≈ 0.8 % at R=5), and within that range more rounds widen it. It narrows as k steps up: [x(2), x(R-1)]
    from R=10, [x(3), x(R-2)] from R=13. Below the level (R=5 a side: 87.9 %) the interval is still returned with
    the coverage it has.
    """
    _check_level(level)
    side = math.sqrt(level)
    b = median_interval(base, side)
    h = median_interval(head, side)
    return RatioInterval(ratio=h.median / b.median, low=h.low / b.high, high=h.high / b.low,
                         coverage=b.coverage * h.coverage, base=b, head=h)


def _u_counts(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) equally likely rank orders give U = 0..m·n (no ties): the coefficients of the
    Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), in exact integers."""
    size = m * n + 1
    c = [1] + [0] * (size - 1)
    for i in range(1, m + 1):
        for u in range(size - 1, n + i - 1, -1):  # times (1 - q^(n+i))
            c[u] -= c[u - n - i]
        for u in range(i, size):  # divided by (1 - q^i)
            c[u] += c[u - i]
    return c


def mann_whitney_p(base: Rounds, head: Rounds) -> float:
    """Exact two-sided p of the Mann-Whitney U test (same distribution vs a shift either way).

    A rank test assumes nothing about the shape of the distribution; with 5 rounds a side its smallest p is
    2/252 ≈ 0.008, reached only when the two sets do not overlap at all. Ties count one half; the null
    distribution assumes none, so with ties the p is approximate.
    """
    b, h = _rounds(base, "base"), _rounds(head, "head")
    u = float(np.sum(h[:, None] > b[None, :]) + 0.5 * np.sum(h[:, None] == b[None, :]))
    counts = _u_counts(b.size, h.size)
    tail = sum(counts[: math.floor(min(u, b.size * h.size - u)) + 1])
    return min(1.0, 2 * tail / math.comb(b.size + h.size, b.size))


def judge(ratio: float, low: float, high: float, direction: Direction = "higher",
          min_effect: float = 0.03) -> tuple[Outcome, str]:
    """The one rule of compare and abtest, on a HEAD/BASE ratio interval: unchanged when it includes 1 or its end
    nearest to 1 is less than `min_effect` away from it; else improved or regressed by the side of 1 it lies on
    (`direction` "higher" is better for throughput, "lower" for latency). Also the finding, in words.

    The effect is the interval's near end, not the median ratio: a verdict must be one we can defend, "it changed
    by at least min_effect"."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if low <= 1.0 <= high:
        return "unchanged", "includes 1"
    effect = 1.0 - high if high < 1.0 else low - 1.0
    if effect < min_effect:
        return "unchanged", f"at least {effect:.1%}, < min_effect {min_effect:.1%}"
    better = (ratio > 1.0) == (direction == "higher")
    return ("improved" if better else "regressed"), f"excludes 1: at least {effect:.1%}"


def verdict(base: Rounds, head: Rounds, direction: Direction = "higher", *,
            min_effect: float = 0.03, min_rounds: int = 5, base_contended: bool = False,
            head_contended: bool = False, level: float = 0.95, drift: float = 0.0) -> Verdict:
    """improved / regressed / unchanged / inconclusive for HEAD against BASE, two separate runs (docs/benchmarking.md
    R10).

    - inconclusive: either side failed (no rounds), has fewer than `min_rounds`, or was contended. Never
      regressed: a gate must not fail a branch on a number the machine spoiled.
    - otherwise `judge` on the ratio interval widened by `drift` on both sides ([low/(1+drift), high·(1+drift)]):
      the spread within each run says nothing about how far two runs of one commit drift apart on a shared host
      (5-8 % measured on the 2-core CI machine, while each run's rounds agree to 1 %), so a blocked comparison can
      only call what lies beyond that drift. Finer changes need paired rounds (omzoo abtest).
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if min_rounds < 1 or min_effect < 0 or drift < 0:
        raise ValueError(f"need min_rounds >= 1, min_effect >= 0 and drift >= 0, got {min_rounds}, {min_effect}, "
                         f"{drift}")
    empty = [name for name, s in (("base", base), ("head", head)) if len(s) == 0]
    if empty:
        return Verdict("inconclusive", f"{' and '.join(empty)} failed: no rounds", None, None)
    r = ratio_interval(base, head, level)
    p = mann_whitney_p(base, head)
    problems = [f"{name} contended" for name, flag in (("base", base_contended), ("head", head_contended)) if flag]
    problems += [f"{name} has {len(s)} rounds < {min_rounds}" for name, s in (("base", base), ("head", head))
                 if len(s) < min_rounds]
    if problems:
        return Verdict("inconclusive", "; ".join(problems), r, p)
    interval = f"ratio {r.ratio:.4f} [{r.low:.4f}, {r.high:.4f}] ({r.coverage:.1%})"
    low, high = r.low / (1.0 + drift), r.high * (1.0 + drift)
    if drift:
        interval += f", with drift ±{drift:.0%} [{low:.4f}, {high:.4f}]"
    outcome, finding = judge(r.ratio, low, high, direction, min_effect)
    joint = ": " if finding.startswith("at least") else " "
    return Verdict(outcome, f"{interval}{joint}{finding}", r, p, finding)


# ----------------------------------------------------------------------------------------- paired rounds (abtest)


def looks(min_pairs: int, look_every: int, max_pairs: int) -> list[int]:
    """The pair counts at which a sequential run looks at its interval: min_pairs, +look_every, ..., max_pairs."""
    if min(min_pairs, look_every, max_pairs) < 1:
        raise ValueError(f"need min_pairs, look_every, max_pairs >= 1, got {min_pairs}, {look_every}, {max_pairs}")
    at = list(range(min(min_pairs, max_pairs), max_pairs + 1, look_every))
    return at if at[-1] == max_pairs else [*at, max_pairs]


def look_level(level: float, n_looks: int) -> float:
    """The level each look's interval needs so that all the looks together hold `level` (Bonferroni).

    Stopping as soon as an interval is narrow enough is optional stopping: a rule that looks K times and keeps the
    first interval it likes covers less than any single look's level. The union bound over the K looks a run may
    make gives P(some look misses) <= K·(1 - per-look level) = 1 - level, whatever the stopping rule picks; the
    order-statistic intervals are exact per look, so the guarantee is distribution-free. The price is width:
    with 5 looks each needs 99 % instead of 95 %."""
    _check_level(level)
    if n_looks < 1:
        raise ValueError(f"need at least one look, got {n_looks}")
    return 1.0 - (1.0 - level) / n_looks
