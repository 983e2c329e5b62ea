"""Speed verdicts over benchmark rounds (omzoo.results.verdicts): the rules on hand-built rounds, then the sides
read from a tiny git repository's committed metrics and rounds files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from git_helpers import commit, new_repo
from rounds_helpers import judged, side

from omzoo.core import paths
from omzoo.results.rules import TIMED, CompareConfig
from omzoo.results.verdicts import Side, read_side, verdicts


def test_a_a_comparison_never_regresses() -> None:
    same = judged(side(), side())
    assert {j.verdict for j in same} == {"unchanged"} and all(j.ratio == 1.0 for j in same)
    assert all(j.ci_low < 1 < j.ci_high and "excludes" not in j.reason for j in same)
    for seed in range(20):  # independent noise on both sides: still nothing improved or regressed
        assert {j.verdict for j in judged(side(seed=seed), side(seed=100 + seed))} == {"unchanged"}, seed


def test_a_2x_slowdown_regresses_throughput_and_latency() -> None:
    rows = judged(side(), side(0.5))
    assert [j.verdict for j in rows] == ["regressed"] * len(TIMED)
    by = {j.metric: j for j in rows}
    tput, p99 = by["throughput_compute_ips"], by["e2e_ms.p99"]
    assert tput.ratio == pytest.approx(0.5) and tput.ci_high < 1 and tput.old == pytest.approx(2 * tput.new)
    assert p99.ratio == pytest.approx(2.0) and p99.ci_low > 1  # latency doubled: worse, although the ratio is > 1
    assert [j.verdict for j in judged(side(0.5), side())] == ["improved"] * len(TIMED)


def test_a_small_effect_is_unchanged_even_when_the_rounds_separate() -> None:
    rows = judged(side(spread=0.001), side(1.02, spread=0.001), CompareConfig(min_effect=0.03))
    assert {j.verdict for j in rows} == {"unchanged"}
    assert all("excludes" not in j.reason and re.search(r"at least 1\.\d%, < min_effect 3\.0%", j.reason) for j in rows)
    assert {j.verdict for j in judged(side(spread=0.001), side(1.02, spread=0.001), CompareConfig(min_effect=0.01))} \
        == {"improved"}


def test_a_contended_failed_or_short_side_is_inconclusive_never_regressed() -> None:
    contended = judged(side(), side(0.5, contended=True))
    assert {j.verdict for j in contended} == {"inconclusive"}
    assert all(j.reason == "head contended" and j.ratio == pytest.approx(j.new / j.old) for j in contended)
    few = judged(side(rounds=3), side(0.5))
    assert {j.verdict for j in few} == {"inconclusive"} and "base has 3 rounds < 5" in few[0].reason
    for broken, why in ((Side(missing="not measured"), "head not measured"),
                        (Side(missing="failed (out of memory)"), "head failed (out of memory)"),
                        (Side({"throughput_compute_ips": 50.0}), "head has no rounds of throughput_compute_ips")):
        rows = judged(side(), broken)
        assert {j.verdict for j in rows} == {"inconclusive"} and rows[0].reason == why, rows[0]
        assert rows[0].ratio is None
    bad = Side({}, {m.name: [1.0, -1.0, 2.0, 3.0, 4.0] for m in TIMED})
    assert judged(side(), bad)[0].reason.startswith("unusable rounds")


def test_why_is_the_verdicts_reason_without_the_interval_it_shows_in_columns() -> None:
    """The table's `why`: stats' finding where the reason names the interval, else the whole reason."""
    worse = judged(side(), side(0.5))[0]
    assert worse.reason == f"ratio {worse.ratio:.4f} [{worse.ci_low:.4f}, {worse.ci_high:.4f}] " \
        f"({worse.coverage:.1%}) {worse.why}"
    assert re.fullmatch(r"excludes 1: at least \d\d\.\d%", worse.why)
    assert judged(side(), side())[0].why == "includes 1"
    small = judged(side(spread=0.001), side(1.02, spread=0.001))[0]
    assert re.fullmatch(r"at least 1\.\d%, < min_effect 3\.0%", small.why) and small.reason.endswith(f": {small.why}")
    assert judged(side(), side(contended=True))[0].why == "head contended"
    assert judged(side(), Side(missing="not measured"))[0].why == "head not measured"


def _bench(speed: float, failed: bool = False, contended: int = 0) -> dict:
    """A bench metrics file and its rounds at `speed` × 100 img/s (rounds as rounds_helpers.side draws them)."""
    rounds = side(speed).samples
    body = {"bs": 8, "failed": 1} if failed else {"bs": 8, "throughput_compute_ips": 100.0 * speed,
                                                  "throughput_e2e_ips": 90.0 * speed,
                                                  "e2e_ms": {"p50": 10.0 / speed, "p99": 12.0 / speed}}
    return {str(paths.bench_metrics("m", 8)): body,
            str(paths.bench_rounds("m", 8)): {"samples": rounds, "contended": contended}}


def test_a_side_is_read_from_the_committed_metrics_and_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"README": "nothing measured\n"}, "empty")
    assert read_side("main", "m", 8) == Side(missing="not measured")
    commit(repo, _bench(1.0, failed=True), "out of memory")
    failed = read_side("main", "m", 8)
    assert failed.missing == "failed (out of memory)" and failed.headline == {"bs": 8, "failed": 1}
    commit(repo, {**_bench(1.0), str(paths.bench_rounds("m", 8)): None}, "no rounds")
    assert read_side("main", "m", 8).missing == \
        "has no rounds (metrics/rounds/m-8.json: measured before rounds were kept?)"
    commit(repo, _bench(1.0, contended=1), "contended")
    busy = read_side("main", "m", 8)
    assert busy.missing == "" and busy.contended and busy.headline["e2e_ms.p99"] == 12.0  # flattened
    assert busy.samples == side().samples


def test_verdicts_judge_every_point_and_metric_between_revisions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, _bench(1.0), "base")
    commit(repo, _bench(0.5), "2x slower")
    rows = verdicts("HEAD~1", "HEAD", [("m", 8), ("m", 1)], CompareConfig())
    assert [(j.bs, j.metric) for j in rows] == [(8, m.name) for m in TIMED] + [(1, m.name) for m in TIMED]
    assert {j.verdict for j in rows[:len(TIMED)]} == {"regressed"}
    assert {(j.verdict, j.reason) for j in rows[len(TIMED):]} == {("inconclusive", "base not measured; head not "
                                                                                    "measured")}
