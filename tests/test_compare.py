"""`omzoo compare` and the report stage on a small git+DVC repository with two toolkit branches.

No model runs: a stand-in stage (fake_stage.py, see dvc_helpers.py) writes metrics, info files and a "compiled"
artefact in the real shapes from params.yaml, and the real `omzoo report` stage and `omzoo compare` verb run on them.
The toolkit branch is 25 % faster and scores the same, which is exactly what the comparison must show.
The pipeline helpers live in dvc_helpers.py, shared with test_remote.py.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest
from dvc_helpers import BASE, HEAD, MODELS, dvc, init_pipeline, omzoo, pipeline_env, run_branch, sh

from omzoo.compare import Row, parse_metrics_diff
from omzoo.plots import assert_offline

Compared = tuple[subprocess.CompletedProcess, Path]  # `omzoo compare` result and its --out directory


def rows_by(rows: list[dict], **match: object) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """main (toolkit 8.0) and cann-8.1 (25 % faster, same accuracy), main checked out."""
    root = tmp_path_factory.mktemp("compare")
    env = pipeline_env(root / "runs.log")
    path = root / "repo"
    init_pipeline(path, env)
    run_branch(path, env, BASE, "8.0", 1.0)
    run_branch(path, env, HEAD, "8.1", 1.25)
    sh(path, env, "git", "checkout", "-q", BASE)
    dvc(path, env, "checkout", "-q")
    return path, env


@pytest.fixture(scope="module")
def compared(repo: tuple[Path, dict[str, str]],
             tmp_path_factory: pytest.TempPathFactory) -> Compared:
    """`omzoo compare main cann-8.1` run once (what `make compare BASE=main HEAD=cann-8.1` runs)."""
    path, env = repo
    out = tmp_path_factory.mktemp("compare-out")
    return omzoo(path, env, "compare", BASE, HEAD, "--out", str(out)), out


# ------------------------------------------------------------------------------------------ unit (fast)


def test_parse_metrics_diff_sorts_and_keeps_only_numbers() -> None:
    diff = {
        "metrics/bench/m_b-16.json": {"throughput_compute_ips": {"old": 10, "new": 12, "diff": 2}},
        "metrics/bench/m_b-2.json": {"throughput_compute_ips": {"old": "error", "new": 5.0},
                                     "e2e_ms.p99": {"old": float("nan"), "new": 1.0}, "bs": {"old": 2, "new": 2}},
        "metrics/eval/m_a.json": {"top5": {"old": 90.0, "new": 90.0, "diff": 0.0},
                                  "top1": {"old": 70.0, "new": 71.4, "diff": 1.4}, "random_weights": {"old": 1}},
        "metrics/other/x.json": {"top1": {"old": 1, "new": 2}},
    }
    rows, random = parse_metrics_diff(diff)
    assert [(r.model, r.bs, r.metric) for r in rows] == [
        ("m_a", None, "top1"), ("m_a", None, "top5"),
        ("m_b", 2, "throughput_compute_ips"), ("m_b", 2, "e2e_ms.p99"), ("m_b", 16, "throughput_compute_ips")]
    assert random == {"m_a"}
    assert rows[2].old is None and rows[2].delta is None and rows[3].old is None  # "error" and NaN: no delta
    assert rows[0].delta == pytest.approx(1.4) and rows[4].pct == pytest.approx(20.0)
    assert Row("m", "accuracy", None, "top1", 0.0, 1.0).pct is None  # no division by zero


def test_offline_check_rejects_cdn_scripts() -> None:
    assert_offline('<script type="text/javascript">var s = {"$schema": "https://vega.github.io/x"}</script>', "ok")
    for page in ('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>', "<script src=//cdn.x/v.js>",
                 '<link rel="stylesheet" href="http://x/y.css">'):
        with pytest.raises(ValueError, match="network"):
            assert_offline(page, "page")


# ------------------------------------------------------------------------------------ on a real repo


@pytest.mark.pipeline
def test_compare_shows_faster_toolkit_and_same_accuracy(compared: Compared) -> None:
    r, out = compared
    text = r.stdout
    assert (out / "compare.md").read_text() == text
    assert "omzoo compare: warning" not in r.stderr, r.stderr
    # rendered tables: every accuracy row unchanged, every compute throughput +25 %, p99 20 % lower
    acc = [ln for ln in text.splitlines() if re.match(r"\| \w+ +\| top[1-5] ", ln)]
    assert len(acc) == 5 * len(MODELS) and all("| +0.00 " in ln and "+0.0 %" in ln for ln in acc), acc
    tput = [ln for ln in text.splitlines() if "| throughput_compute_ips " in ln]
    assert len(tput) == 2 * len(MODELS) and all("+25.0 %" in ln for ln in tput), tput
    assert re.search(r"\| scnet50_v1d +\| 8 +\| throughput_compute_ips +\| 800\.0 +\| 1000\.0 +\| \+200\.0 ", text)
    assert all("-20.0 %" in ln for ln in text.splitlines() if "| e2e_ms.p99 " in ln)
    assert "Random weights: accuracy means nothing" in text
    assert re.search(r"\| params\.yaml +\| toolkit\.version +\| 8\.0 +\| 8\.1 ", text)
    # the JSON written next to it
    data = json.loads((out / "compare.json").read_text())
    assert data["warnings"] == [] and data["random_weights"] == sorted(MODELS)
    assert all(r["delta"] == 0 for r in rows_by(data["metrics"], kind="accuracy"))
    compute = rows_by(data["metrics"], metric="throughput_compute_ips")
    assert len(compute) == 4 and all(r["pct"] == pytest.approx(25.0) for r in compute)
    assert {p["param"] for p in data["params"]} == {"toolkit.version", "toolkit.speedup"}


@pytest.mark.pipeline
def test_dvc_metrics_diff_json_agrees(repo: tuple[Path, dict[str, str]]) -> None:
    """The same facts straight from DVC's --json (what CI should check, not the exit code)."""
    path, env = repo
    diff = json.loads(dvc(path, env, "metrics", "diff", "--json", "--all", BASE, HEAD).stdout)
    for m in MODELS:
        assert all(diff[f"metrics/eval/{m}.json"][k]["diff"] == 0 for k in ("top1", "top5"))
        for bs in (1, 8):
            t = diff[f"metrics/bench/{m}-{bs}.json"]["throughput_compute_ips"]
            assert t["new"] / t["old"] == pytest.approx(1.25)


@pytest.mark.pipeline
def test_compare_plot_is_offline(compared: Compared) -> None:
    _, out = compared
    page = (out / "index.html").read_text()
    assert not re.search(r"<script[^>]*src=", page) and "cdn.jsdelivr" not in page
    assert "data:image/png;base64," in page and f"<td>{HEAD}</td><td>scnet50_v1d/bs008</td>" in page
    cell = "</td><td>scnet50_v1d/bs008</td>"
    assert page.index(f"<td>{BASE}{cell}") < page.index(f"<td>{HEAD}{cell}")  # revisions in the order compared
    assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    interactive = out / "interactive.html"
    if interactive.exists():  # vl-convert-python installed: vega inlined, still nothing from the network
        assert_offline(interactive.read_text(), "interactive.html")


@pytest.mark.pipeline
def test_unknown_revision_is_a_clear_error(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    path, env = repo
    r = omzoo(path, env, "compare", BASE, "cann-9.9", "--out", str(tmp_path), ok=False)
    assert r.returncode == 2
    assert "unknown revision 'cann-9.9'" in r.stderr and BASE in r.stderr and "Traceback" not in r.stderr


@pytest.mark.pipeline
def test_revision_without_metrics_is_reported(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """DVC exits 0 when a revision's metrics fail to load (DVC.md §5): compare says so, from the content."""
    path, env = repo
    r = omzoo(path, env, "compare", f"{BASE}~1", BASE, "--out", str(tmp_path), "--no-plots")  # before any repro
    assert f"warning: no omzoo metrics at '{BASE}~1'" in r.stderr and "### Warnings" in r.stdout
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["warnings"] and all(row["old"] is None and row["new"] is not None for row in data["metrics"])


@pytest.mark.pipeline
def test_bench_table_and_plots_only(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """The two workspace modes the Makefile calls (`make bench`, `make plots`)."""
    path, env = repo
    table = omzoo(path, env, "report", "--bench-table", "8", "--model", "scnet*").stdout
    assert "scnet50_v1d" in table and "ran92_cifar10" not in table
    # ours 800 img/s at bs8 (workspace = main) against the 310P guide's 2094: ratio 0.38; no T4 figure
    assert re.search(r"\| scnet50_v1d +\| 8 +\| 800\.0 +\| 720\.0 +\| 10\.00 +\| 12\.00 +\| 2094 +\| 0\.38 +\| – ",
                     table), table
    table = omzoo(path, env, "report", "--bench-table", "1").stdout
    assert "ran92_cifar10" in table and "713.4" in table  # published T4 at bs1
    r = omzoo(path, env, "report", "--bench-table", "8", "--model", "resnet*", ok=False)
    assert r.returncode == 2 and "no model in params.yaml matches 'resnet*'" in r.stderr
    omzoo(path, env, "compare", "--plots-only", "--out", str(tmp_path / "plots"))
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "<script" not in page and "<td>workspace</td><td>ran92_cifar10/bs001</td>" in page


@pytest.mark.pipeline
def test_report_summary(repo: tuple[Path, dict[str, str]]) -> None:
    """summary.md from the report stage: provenance, random-weights warning, published columns, best bs."""
    path, _ = repo
    text = (path / "reports" / "summary.md").read_text()
    assert text.count("Random weights: accuracy means nothing") >= 1 + len(MODELS)
    assert "## Provenance" in text
    for fact in ("onnxruntime=8.0 driver=570.1", "test cpu", "fp32", "abc1234", "c0ffeec0ffeec0ff", "d1a7a5e7d1a7a5e7",
                 "[1, 8] in params; measured [1, 8]", "random, seed 0"):
        assert fact in text, fact
    scnet = text.split("(`scnet50_v1d`)")[1].split("## ")[0]
    ran = text.split("(`ran92_cifar10`)")[1]
    assert "310P img/s" in scnet and "T4 img/s" not in scnet and "310 img/s" not in scnet  # only what is published
    assert all(f"{p} img/s" in ran for p in ("310P", "310", "T4"))
    assert re.search(r"\| 8 ★ +\| 800\.0 ", scnet) and re.search(r"\| 8 ★ +\| 1600\.0 .*\| 0\.33 +\|", ran)
    assert (path / "reports" / "throughput.png").read_bytes()[:4] == b"\x89PNG"
    assert not math.isnan(float((path / "reports" / "throughput.csv").read_text().splitlines()[1].split(",")[3]))
