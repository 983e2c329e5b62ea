"""The throughput plot renders with no network: a script-free page with the PNG inlined, for two revisions
(`omzoo compare`) or the workspace (`make plots`), on the fake pipeline's repository (conftest.py `branches`)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import omzoo
from dvc_helpers import BASE, HEAD

from omzoo.results import plots, throughput
from omzoo.results.plots import assert_offline, render_plots, static_html


def test_offline_check_rejects_cdn_scripts() -> None:
    assert_offline('<script type="text/javascript">var s = {"$schema": "https://vega.github.io/x"}</script>', "ok")
    for page in ('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>', "<script src=//cdn.x/v.js>",
                 '<link rel="stylesheet" href="http://x/y.css">'):
        with pytest.raises(ValueError, match="network"):
            assert_offline(page, "page")


def _spec() -> dict[str, Any]:
    """What `dvc plots diff main slow` hands over: the CSV rows as strings, tagged with their revision."""
    values = [{"rev": rev, "model": "m", "batch_size": str(bs), "config": f"m-{bs}", "contended": "0",
               "throughput_compute_ips": str(ips * bs),
               "throughput_compute_ci_low": str(ips * bs - 1) if bs > 1 else "",  # bs 1: no interval recorded
               "throughput_compute_ci_high": str(ips * bs + 1) if bs > 1 else ""}
              for rev, ips in (("main", 10.0), ("slow", 5.0)) for bs in (16, 8, 1)]
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": values},
            "encoding": {"x": {"field": "throughput_compute_ips"}, "y": {"field": "config"}}}


def test_the_compared_plot_is_the_reports_figure_per_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []
    monkeypatch.setattr(throughput, "png_bytes", lambda rows, title: drawn.append((rows, title)) or b"png")
    assert plots.plot_png(_spec()) == b"png"
    ((rows, title),) = drawn
    assert title == "throughput: main vs slow"
    assert [(r["rev"], r["batch_size"], r["throughput_compute_ips"], r["throughput_compute_ci_low"]) for r in rows] \
        == [(rev, bs, ips * bs, ips * bs - 1 if bs > 1 else None) for rev, ips in (("main", 10.0), ("slow", 5.0))
            for bs in (16, 8, 1)]


def test_the_page_lists_points_in_batch_size_order(tmp_path: Path) -> None:
    png = plots.plot_png(_spec())
    page = static_html(_spec(), png, "t", None)
    cells = re.findall(r"<tr><td>(\w+)</td><td>(m-\d+)</td>", page)
    assert cells == [(rev, f"m-{bs}") for bs in (1, 8, 16) for rev in ("main", "slow")]  # 8 before 16, not as text
    assert png[:4] == b"\x89PNG"


def test_the_plot_files_are_committed_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page that fails after the PNG was drawn leaves the previous PNG and page as they were (never a new plot
    beside an old page that still embeds the old one)."""
    monkeypatch.setattr(plots, "plot_spec", lambda revisions: _spec())
    monkeypatch.setattr(plots, "interactive_html", lambda spec: None)
    out = tmp_path / "plots"
    render_plots(None, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(throughput, "png_bytes", lambda rows, title: b"\x89PNG new")

    def broken(*_: object) -> str:
        raise ValueError("index.html: cannot render")

    monkeypatch.setattr(plots, "static_html", broken)
    with pytest.raises(ValueError, match="index.html"):
        render_plots(None, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_the_interactive_page_sorts_points_by_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """vl-convert-python stood in for: the spec it renders orders the y axis by (model, bs)."""
    rendered = []
    fake = types.SimpleNamespace(get_vegalite_versions=lambda: ["5.8", "5.20", "6.1"],
                                 vegalite_to_html=lambda spec, vl_version, bundle: rendered.append((spec, vl_version))
                                 or "<html></html>")
    monkeypatch.setitem(sys.modules, "vl_convert", fake)
    spec = _spec()
    assert plots.interactive_html(spec) == "<html></html>"
    ((shown, version),) = rendered
    assert shown["encoding"]["y"]["sort"] == ["m-1", "m-8", "m-16"] and version == "5.20"
    assert "sort" not in spec["encoding"]["y"]  # the spec dvc gave is left as it was


@pytest.mark.pipeline
def test_two_revisions_plot_is_offline(branches: tuple[Path, dict[str, str]], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(branches[0])
    out = tmp_path / "plots"
    page = render_plots([BASE, HEAD], out).read_text()
    assert not re.search(r"<script[^>]*src=", page) and "cdn.jsdelivr" not in page
    assert "data:image/png;base64," in page and f"<td>{HEAD}</td><td>scnet50_v1d-8-fp32</td>" in page
    cell = "</td><td>scnet50_v1d-8-fp32</td>"
    assert page.index(f"<td>{BASE}{cell}") < page.index(f"<td>{HEAD}{cell}")  # revisions in the order compared
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    interactive = out / "interactive.html"
    if interactive.exists():  # vl-convert-python installed: vega inlined, still nothing from the network
        assert_offline(interactive.read_text(), "interactive.html")


@pytest.mark.pipeline
def test_plots_only_renders_the_workspace(branches: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """What `make plots` runs."""
    path, env = branches
    omzoo("compare", "--plots-only", "--out", tmp_path / "plots", cwd=path, env=env, ok=True)
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "<script" not in page and "<td>workspace</td><td>ran92_cifar10-1-fp32</td>" in page
