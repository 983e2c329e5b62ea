"""Paired rounds (omzoo.timing.pairs): the randomised order, the re-measuring of pairs that load split, the stopping
rule, and the coverage of the reported interval on simulated pairs with drift and load — measured, at least the
nominal level.

The simulated side is a measurement source, not a stand-in for a library: a machine whose speed drifts slowly,
with load that comes and goes (hitting both rounds of a pair, or starting between them) and independent noise per
round; HEAD is `effect` times BASE's speed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from omzoo.core.params import AbtestConfig
from omzoo.timing import pairs
from omzoo.timing.pairs import Pair, PairedRun, order, run_pairs, settled
from omzoo.timing.stats import MedianInterval

CFG = AbtestConfig(min_pairs=10, look_every=5, max_pairs=40, max_s=1e9, max_repeats=10)


class Machine:
    """One host both sides run on: drift (a slow random walk in log speed), load episodes, per-round noise."""

    def __init__(self, seed: int, drift: float = 0.01, noise: float = 0.03, load_p: float = 0.1,
                 load_cost: float = 0.3) -> None:
        self.rng = np.random.default_rng(seed)
        self.level, self.drift, self.noise = 0.0, drift, noise
        self.load_p, self.load_cost, self.loaded = load_p, load_cost, False

    def tick(self) -> tuple[float, bool]:
        self.level += self.rng.normal(0, self.drift)
        if self.rng.random() < self.load_p:  # load starts or stops, sometimes between the rounds of a pair
            self.loaded = not self.loaded
        speed = np.exp(self.level + self.rng.normal(0, self.noise)) * (1 - self.load_cost * self.loaded)
        return float(speed), self.loaded


class Side:
    def __init__(self, machine: Machine, speed: float) -> None:
        self.machine, self.speed, self.calls = machine, speed, 0

    def round(self, warmup_iters: int) -> dict:
        self.calls += 1
        factor, loaded = self.machine.tick()
        ips = 100.0 * self.speed * factor
        return {"throughput_compute_ips": ips, "throughput_e2e_ips": 0.95 * ips, "e2e_ms.p50": 1000 / ips,
                "e2e_ms.p99": 1100 / ips, "contended": int(loaded), "others_cores": 0.5 * loaded}


def simulate(effect: float, seed: int, cfg: AbtestConfig = CFG, **machine: float) -> PairedRun:
    m = Machine(seed, **machine)
    return run_pairs({"base": Side(m, 1.0), "head": Side(m, effect)}, replace(cfg, seed=seed), "m-1",
                     progress=False)


@pytest.mark.parametrize("effect", [1.0, 1.05])
def test_the_interval_covers_the_true_ratio_at_least_nominally_with_drift_load_and_early_stopping(
        effect: float) -> None:
    """400 sequential runs each: the share whose final interval holds the true ratio is at least the level
    (the Bonferroni looks make it conservative); a naive rule that looks at 95 % every time is the comparison."""
    runs = [simulate(effect, seed) for seed in range(400)]
    covered = [r.interval("throughput_compute_ips").low <= effect <= r.interval("throughput_compute_ips").high
               for r in runs]
    assert np.mean(covered) >= CFG.level
    assert all(r.coverage >= CFG.level for r in runs)  # the union bound it reports reaches the level too
    stopped_early = sum(len(r.pairs) < CFG.max_pairs for r in runs)
    assert stopped_early > 0  # the rule does stop early, so the coverage above is that of an adaptive rule


def test_a_real_change_is_found_and_an_aa_test_is_not_called_a_change() -> None:
    assert settled(simulate(0.8, 1).interval("throughput_compute_ips"), CFG.min_effect)
    slow = simulate(0.8, 1).interval("throughput_compute_ips")
    assert slow.high < 0.9
    aa = [simulate(1.0, s).interval("throughput_compute_ips") for s in range(30)]
    assert not any(iv.low > 1.01 or iv.high < 0.99 for iv in aa)


def test_the_order_inside_pairs_is_seeded_random_and_recorded() -> None:
    runs = [simulate(1.0, 7, noise=0.3) for _ in range(2)]
    firsts = [[p.first for p in r.pairs] for r in runs]
    assert firsts[0] == firsts[1]  # the same seed draws the same orders
    assert set(firsts[0]) == {"base", "head"}
    other = [p.first for p in simulate(1.0, 8, noise=0.3).pairs]
    assert other != firsts[0][: len(other)]
    draws = order(0, "m-1").random(4000) < 0.5
    assert 0.45 < draws.mean() < 0.55
    assert (order(0, "m-1").random(8) == order(0, "m-1").random(8)).all()
    assert (order(0, "m-1").random(8) != order(0, "m-8").random(8)).any()  # each point its own sequence


def test_a_pair_that_load_split_is_measured_again_and_one_both_saw_is_kept() -> None:
    run = simulate(1.0, 3, load_p=0.3, noise=0.01)
    assert run.remeasured and all(p.mismatched for p in run.remeasured)
    kept_mismatched = [p for p in run.pairs if p.mismatched]
    assert all(p.repeats == CFG.max_repeats for p in kept_mismatched)  # only once the bound is spent
    assert any(p.loaded for p in run.pairs)


def test_the_budgets_end_a_run_and_say_so() -> None:
    wide = simulate(1.0, 5, noise=0.5)
    assert len(wide.pairs) == CFG.max_pairs and "max_pairs" in wide.stopped
    short = simulate(1.0, 5, replace(CFG, max_s=0.0), noise=0.5)
    assert short.pairs == [] and "max_s" in short.stopped


def test_settled_is_narrow_or_clearly_beyond_the_threshold() -> None:
    def iv(low: float, high: float) -> MedianInterval:
        return MedianInterval((low + high) / 2, low, high, 0.95, 10, 0.0)

    assert settled(iv(0.995, 1.005), 0.01)
    assert settled(iv(1.02, 1.5), 0.01) and settled(iv(0.5, 0.98), 0.01)
    assert not settled(iv(0.97, 1.03), 0.01) and not settled(iv(1.005, 1.2), 0.01)


def test_coverage_is_the_union_bound_over_every_look() -> None:
    run = PairedRun(schedule=[10, 20], look_level=0.975)
    run.pairs = [Pair("base", {"throughput_compute_ips": 1.0}, {"throughput_compute_ips": 1.0})] * 15
    from omzoo.timing.stats import interval_coverage

    expected = 1 - sum(1 - interval_coverage(n, 0.975) for n in (10, 15, 20))
    assert run.coverage == pytest.approx(expected)
    assert pairs.STOP_ON == ("throughput_compute_ips", "throughput_e2e_ips")
