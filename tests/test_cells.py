"""How one benchmark point is written in the report's and `make bench`'s tables (omzoo.results.cells)."""

from __future__ import annotations

from rounds_helpers import bench_metrics

from omzoo.results.cells import failure, ratio, with_interval


def test_a_throughput_is_shown_with_its_interval_and_contention() -> None:
    assert with_interval(bench_metrics(100.0)) == "100.0 [98.0, 103.0]"
    assert with_interval(bench_metrics(100.0, contended=1)) == "100.0 [98.0, 103.0] †"
    assert with_interval(bench_metrics(100.0), "e2e") == "99.0"  # no e2e interval recorded: the median alone
    assert with_interval({}) == "–"


def test_a_point_without_a_number_says_why() -> None:
    assert failure({}, {}) == "not measured"
    assert failure({"failed": 1}, {}) == "failed: out of memory"
    assert failure({}, {"error": "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)"}) == \
        "failed: CUDA out of memory. Tried to allocate 2."  # the first 40 characters
    assert failure(bench_metrics(1.0), {}) is None


def test_the_ratio_to_a_published_figure() -> None:
    assert ratio(800.0, 2094.0) == "0.38"
    assert ratio(20.0, 2094.0) == "0.0096"  # a CPU far below an accelerator: two significant digits
    assert ratio(None, 2094.0) == ratio(800.0, None) == ratio(0.0, 1.0) == "–"
