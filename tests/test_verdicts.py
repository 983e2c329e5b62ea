"""Speed verdicts over benchmark rounds (omzoo.results.verdicts): the rules on hand-built rounds, then the sides
read from a tiny git repository's committed metrics and rounds files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from git_helpers import commit, new_repo
from rounds_helpers import DEFAULT, judged, side

from omzoo.core import paths
from omzoo.results.rules import TIMED, CompareConfig
from omzoo.results.verdicts import Side, different_host, host_of, read_side, verdicts


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
    tight = CompareConfig(min_effect=0.03, drift=0.0)
    rows = judged(side(spread=0.001), side(1.02, spread=0.001), tight)
    assert {j.verdict for j in rows} == {"unchanged"}
    assert all("excludes" not in j.reason and re.search(r"at least 1\.\d%, < min_effect 3\.0%", j.reason) for j in rows)
    assert {j.verdict for j in judged(side(spread=0.001), side(1.02, spread=0.001),
                                      CompareConfig(min_effect=0.01, drift=0.0))} == {"improved"}


def test_the_drift_between_runs_widens_the_interval_before_it_is_judged() -> None:
    """Two runs of one commit drift apart by a few per cent while each run's rounds agree to 0.1 %: without the
    drift allowance an A/A pair 6 % apart would be a change; with compare's default (8 %) it is unchanged, and a
    2x change is still found."""
    a, a_later = side(spread=0.001), side(0.94, seed=1, spread=0.001)
    undrifted = judged(a, a_later, CompareConfig(drift=0.0))
    assert {j.verdict for j in undrifted} == {"regressed"}  # latency 6 % up, throughput 6 % down: both worse
    drifted = judged(a, a_later)
    assert {j.verdict for j in drifted} == {"unchanged"}
    assert all("with drift ±8%" in j.reason and j.why == "includes 1" for j in drifted)
    assert all(j.ci_high < 1 or j.ci_low > 1 for j in drifted)  # the rounds' own interval excludes 1: drift decides
    assert {j.verdict for j in judged(a, side(0.5, spread=0.001))} == {"regressed"}
    assert {j.verdict for j in judged(a, side(0.5, spread=0.001), CompareConfig(drift=5.0))} == {"unchanged"}


def test_a_contended_failed_or_short_side_is_inconclusive_never_regressed() -> None:
    contended = judged(side(), side(0.5, contended=True))
    assert {j.verdict for j in contended} == {"inconclusive"}
    assert all(j.reason == "head contended" and j.ratio == pytest.approx(j.new / j.old) for j in contended)
    assert all(j.evidence == "head contended" for j in contended)  # the data is spoiled: the gate fails on it
    few = judged(side(rounds=3), side(0.5))
    assert {j.verdict for j in few} == {"inconclusive"} and "base has 3 rounds < 5" in few[0].reason
    assert few[0].evidence == few[0].reason
    where, rounds = "head:metrics/bench/m-8-fp32.json", "head:metrics/rounds/m-8-fp32.json"
    for broken, why, evidence in (
            (Side(missing="not measured"), "head not measured", ""),  # a point HEAD's params do not ask for
            (Side(missing="not measured", problem=f"{where} missing (the point is in its params.yaml)", where=where),
             f"{where} missing (the point is in its params.yaml)", "same"),
            (Side(failed=True, missing="failed (out of memory)", where=where),
             f"{where}: head failed (out of memory) where base ran", "same"),
            (Side({"throughput_compute_ips": 50.0}, where=where, rounds_where=rounds),
             f"{rounds} has no rounds of throughput_compute_ips", "same"),
            (Side({}, {"throughput_compute_ips": [50.0] * 5}, where=where),
             f"{where} has no value of throughput_compute_ips", "same"),
            (Side({"throughput_compute_ips": "fast"}, {"throughput_compute_ips": [50.0] * 5}, where=where),
             f"{where} has no value of throughput_compute_ips", "same")):  # not a number: no value
        rows = judged(side(), broken)
        assert {j.verdict for j in rows} == {"inconclusive"} and rows[0].reason == why, rows[0]
        assert rows[0].ratio is None and rows[0].evidence == (why if evidence == "same" else evidence)
    both_failed = judged(Side(failed=True, missing="failed (out of memory)"),
                         Side(failed=True, missing="failed (out of memory)"))
    assert both_failed[0].reason == "base failed (out of memory); head failed (out of memory)"
    assert not both_failed[0].evidence  # out of memory on both: a result, not broken evidence
    bad = Side({m.name: 1.0 for m in TIMED}, {m.name: [1.0, -1.0, 2.0, 3.0, 4.0] for m in TIMED},
               host=side().host, where=where)
    assert judged(side(), bad)[0].reason.startswith("unusable rounds")
    assert where in judged(side(), bad)[0].evidence


def test_results_from_another_host_get_no_speed_verdict() -> None:
    gpu = {"device": "NVIDIA H200", "cpu_count": "16", "driver_version": "570.1"}
    for other in ({"device": "Ascend 310P", "cpu_count": "16", "driver_version": "570.1"},
                  {**gpu, "cpu_count": "2"}, {**gpu, "driver_version": "580.2"}, {"device": "NVIDIA H200"}):
        rows = judged(side(host=gpu), side(0.5, host=other))  # 2x slower, but on another machine
        assert {j.verdict for j in rows} == {"inconclusive"}, other
        assert all(j.reason.startswith("different host: ") and "omzoo abtest" in j.reason for j in rows)
        assert all(j.ratio is None and not j.evidence for j in rows)
    assert "device 'NVIDIA H200' vs 'Ascend 310P'" in judged(side(host=gpu), side(host={**gpu, "device":
                                                                                          "Ascend 310P"}))[0].reason
    assert {j.verdict for j in judged(side(host=gpu), side(0.5, host=dict(gpu)))} == {"regressed"}


def test_the_host_is_read_from_the_info_files_device_fields() -> None:
    info = {"device": "test cpu", "cpu_count": 2, "host": "runner-17", "runtime_version": "1.2",
            "extra": {"driver_version": "570.1", "soc_version": "", "other": "x"}}
    assert host_of(info) == {"device": "test cpu", "cpu_count": "2", "driver_version": "570.1"}
    assert host_of({"extra": "not a dict"}) == {}  # the hostname alone is no host: CI runners differ in name only
    assert different_host(Side(host=host_of(info)), Side(host=host_of({**info, "host": "runner-3"}))) == ""
    assert different_host(Side(host=host_of(info)), Side(host=host_of({**info, "extra": {}}))) == \
        "driver_version '570.1' vs '?'"


def test_why_is_the_verdicts_reason_without_the_interval_it_shows_in_columns() -> None:
    """The table's `why`: stats' finding where the reason names the interval, else the whole reason."""
    worse = judged(side(), side(0.5))[0]
    drift = DEFAULT.drift
    assert worse.reason == f"ratio {worse.ratio:.4f} [{worse.ci_low:.4f}, {worse.ci_high:.4f}] " \
        f"({worse.coverage:.1%}), with drift ±{drift:.0%} [{worse.ci_low / (1 + drift):.4f}, " \
        f"{worse.ci_high * (1 + drift):.4f}] {worse.why}"
    assert re.fullmatch(r"excludes 1: at least \d\d\.\d%", worse.why)
    assert judged(side(), side())[0].why == "includes 1"
    small = judged(side(spread=0.001), side(1.02, spread=0.001), CompareConfig(drift=0.0))[0]
    assert re.fullmatch(r"at least 1\.\d%, < min_effect 3\.0%", small.why) and small.reason.endswith(f": {small.why}")
    assert judged(side(), side(contended=True))[0].why == "head contended"
    assert judged(side(), Side(missing="not measured"))[0].why == "head not measured"


def _bench(speed: float, failed: bool = False, contended: int = 0, device: str = "test cpu") -> dict:
    """A bench metrics file, its rounds and its info file at `speed` × 100 img/s (rounds as rounds_helpers.side
    draws them)."""
    rounds = side(speed).samples
    body = {"bs": 8, "failed": 1} if failed else {"bs": 8, "throughput_compute_ips": 100.0 * speed,
                                                  "throughput_e2e_ips": 90.0 * speed,
                                                  "e2e_ms": {"p50": 10.0 / speed, "p99": 12.0 / speed}}
    return {str(paths.bench_metrics("m", 8)): body,
            str(paths.bench_rounds("m", 8)): {"samples": rounds, "contended": contended},
            str(paths.bench_info("m", 8)): {"device": device, "cpu_count": 2, "extra": {"driver_version": "1"}}}


def test_a_side_is_read_from_the_committed_metrics_and_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, {"README": "nothing measured\n"}, "empty")
    metrics_file = f"main:{paths.bench_metrics('m', 8)}"
    assert read_side("main", "m", 8, declared=False) == Side(missing="not measured", where=metrics_file)
    assert read_side("main", "m", 8).problem == f"{metrics_file} missing (the point is in its params.yaml)"
    commit(repo, _bench(1.0, failed=True), "out of memory")
    failed = read_side("main", "m", 8)
    assert failed.missing == "failed (out of memory)" and failed.failed and failed.headline == {"bs": 8, "failed": 1}
    assert not failed.problem
    commit(repo, _bench(1.0), "measured")
    good = read_side("main", "m", 8)
    assert (good.where, good.rounds_where) == (metrics_file, f"main:{paths.bench_rounds('m', 8)}")
    assert (good.missing, good.problem, good.contended) == ("", "", False) and good.samples == side().samples
    assert good.host == {"device": "test cpu", "cpu_count": "2", "driver_version": "1"}
    rounds, info = f"main:{paths.bench_rounds('m', 8)}", f"main:{paths.bench_info('m', 8)}"
    for files, problem in (
            ({str(paths.bench_metrics("m", 8)): "{not json"}, rf"^{metrics_file} not valid JSON \(Expecting"),
            ({str(paths.bench_metrics("m", 8)): "[1, 2]"}, rf"^{metrics_file} is not a JSON object$"),
            ({str(paths.bench_rounds("m", 8)): None}, rf"^{rounds} missing$"),
            ({str(paths.bench_rounds("m", 8)): "{\"samples\": [1,"}, rf"^{rounds} not valid JSON"),
            ({str(paths.bench_rounds("m", 8)): {"contended": 0}}, rf"^{rounds} has no per-round samples$"),
            ({str(paths.bench_info("m", 8)): None}, rf"^{info} missing$"),
            ({str(paths.bench_info("m", 8)): "null"}, rf"^{info} is not a JSON object$")):
        commit(repo, {**_bench(1.0), **files}, "broken")
        broken = read_side("main", "m", 8)
        assert broken.missing and re.search(problem, broken.problem), (files, broken)
        assert read_side("main", "m", 8, declared=False).problem == broken.problem  # broken is broken, asked or not
    commit(repo, _bench(1.0, contended=1), "contended")
    busy = read_side("main", "m", 8)
    assert busy.missing == "" and busy.contended and busy.headline["e2e_ms.p99"] == 12.0  # flattened
    assert busy.samples == side().samples


def test_verdicts_judge_every_point_and_metric_between_revisions(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, _bench(1.0), "base")
    commit(repo, _bench(0.5), "2x slower")
    points = {("m", 8), ("m", 1)}
    rows = verdicts("HEAD~1", "HEAD", [("m", 8), ("m", 1)], CompareConfig(), {"HEAD~1": {("m", 8)},
                                                                              "HEAD": {("m", 8)}})
    assert [(j.bs, j.metric) for j in rows] == [(8, m.name) for m in TIMED] + [(1, m.name) for m in TIMED]
    assert {j.verdict for j in rows[:len(TIMED)]} == {"regressed"}
    assert {(j.verdict, j.reason, j.evidence) for j in rows[len(TIMED):]} == {
        ("inconclusive", "base not measured; head not measured", "")}  # bs 1 asked for by neither side
    asked = verdicts("HEAD~1", "HEAD", [("m", 1)], CompareConfig(), {"HEAD~1": set(), "HEAD": points})
    assert {j.evidence for j in asked} == {"HEAD:metrics/bench/m-1-fp32.json missing (the point is in its params.yaml)"}
    commit(repo, _bench(0.5, device="other cpu"), "measured elsewhere")
    elsewhere = verdicts("HEAD~2", "HEAD", [("m", 8)], CompareConfig())
    assert {j.verdict for j in elsewhere} == {"inconclusive"}
    assert all("different host: device 'test cpu' vs 'other cpu'" in j.reason for j in elsewhere)
