"""The report stage's summary.md and `make bench`'s table, on the fake pipeline's repository (conftest.py
`branches`, main checked out): provenance, the random-weights warning, published columns, the best batch size."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from dvc_helpers import MODELS, omzoo

pytestmark = pytest.mark.pipeline


def test_report_summary(branches: tuple[Path, dict[str, str]]) -> None:
    path, _ = branches
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


def test_bench_table(branches: tuple[Path, dict[str, str]]) -> None:
    """What `make bench BS=…` prints for this workspace (main)."""
    path, env = branches
    table = omzoo(path, env, "report", "--bench-table", "8", "--model", "scnet*").stdout
    assert "scnet50_v1d" in table and "ran92_cifar10" not in table
    # ours 800 img/s at bs8 (workspace = main), its rounds' interval and cv, against the 310P guide's 2094: ratio
    # 0.38; no T4 figure
    assert re.search(r"\| scnet50_v1d +\| 8 +\| 800\.0 \[7\d\d\.\d, 8\d\d\.\d\] +\| 0\.0\d\d +\| 720\.0 \[[\d., ]+\] +"
                     r"\| 10\.00 +\| 12\.00 +\| 2094 +\| 0\.38 +\| – ", table), table
    table = omzoo(path, env, "report", "--bench-table", "1").stdout
    assert "ran92_cifar10" in table and "713.4" in table  # published T4 at bs1
    r = omzoo(path, env, "report", "--bench-table", "8", "--model", "resnet*", ok=False)
    assert r.returncode == 2 and "no model in params.yaml matches 'resnet*'" in r.stderr
