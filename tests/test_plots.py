"""The throughput plot renders with no network: a script-free page with the PNG inlined, for two revisions
(`omzoo compare`) or the workspace (`make plots`), on the fake pipeline's repository (conftest.py `branches`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dvc_helpers import BASE, HEAD, omzoo

from omzoo.results.plots import assert_offline, render_plots


def test_offline_check_rejects_cdn_scripts() -> None:
    assert_offline('<script type="text/javascript">var s = {"$schema": "https://vega.github.io/x"}</script>', "ok")
    for page in ('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>', "<script src=//cdn.x/v.js>",
                 '<link rel="stylesheet" href="http://x/y.css">'):
        with pytest.raises(ValueError, match="network"):
            assert_offline(page, "page")


@pytest.mark.pipeline
def test_two_revisions_plot_is_offline(branches: tuple[Path, dict[str, str]], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(branches[0])
    out = tmp_path / "plots"
    page = render_plots([BASE, HEAD], out).read_text()
    assert not re.search(r"<script[^>]*src=", page) and "cdn.jsdelivr" not in page
    assert "data:image/png;base64," in page and f"<td>{HEAD}</td><td>scnet50_v1d/bs008</td>" in page
    cell = "</td><td>scnet50_v1d/bs008</td>"
    assert page.index(f"<td>{BASE}{cell}") < page.index(f"<td>{HEAD}{cell}")  # revisions in the order compared
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    interactive = out / "interactive.html"
    if interactive.exists():  # vl-convert-python installed: vega inlined, still nothing from the network
        assert_offline(interactive.read_text(), "interactive.html")


@pytest.mark.pipeline
def test_plots_only_renders_the_workspace(branches: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """What `make plots` runs."""
    path, env = branches
    omzoo(path, env, "compare", "--plots-only", "--out", str(tmp_path / "plots"))
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "<script" not in page and "<td>workspace</td><td>ran92_cifar10/bs001</td>" in page
