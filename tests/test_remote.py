"""The scale-out recipe (docs/dvc.md §13) with a local-directory remote: one clone per toolkit branch.

Clone A measures main and cann-8.1 and pushes data (DVC remote) and results (git). Clone B checks out the
toolkit branch, `dvc pull`s, and finds nothing to re-run: no stage command executes (each one appends to a
log). Clone C compares the two branches without pulling anything: the metrics live in git (cache: false) and
the per-image predictions are streamed from the remote; with the remote out of reach it names the fetch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import omzoo
from dvc_helpers import BASE, HEAD, MODELS, dvc, init_pipeline, pipeline_env, run_branch, sh

pytestmark = [pytest.mark.pipeline, pytest.mark.slow]  # three clones and a remote: about a minute


def _log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _cache_files(repo: Path) -> list[Path]:
    cache = repo / ".dvc" / "cache"
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_remote_round_trip(tmp_path: Path) -> None:
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-remote"
    sh(tmp_path, pipeline_env(), "git", "init", "-q", "--bare", "-b", BASE, str(origin))

    # machine A: both branches, pushed to the shared remote and to git
    log_a = tmp_path / "a.log"
    env_a = pipeline_env(log_a)
    a = tmp_path / "a"
    sh(tmp_path, env_a, "git", "clone", "-q", str(origin), str(a))
    init_pipeline(a, env_a, remote=store, git_init=False)
    run_branch(a, env_a, BASE, "8.0", 1.0)
    dvc(a, env_a, "push", "-q")
    sh(a, env_a, "git", "push", "-q", "-u", "origin", BASE)
    run_branch(a, env_a, HEAD, "8.1", 1.25)
    dvc(a, env_a, "push", "-q")
    sh(a, env_a, "git", "push", "-q", "-u", "origin", HEAD)
    assert _log(log_a).count("compile 8.1") == 1 and _log(log_a).count("measure 8.1") == 1
    assert any(p.is_file() for p in store.rglob("*")), "dvc push sent nothing to the remote"

    # machine C: compare with no pull at all, on a clone that never had a DVC cache
    c = tmp_path / "c"
    env_c = pipeline_env(tmp_path / "c.log")
    sh(tmp_path, env_c, "git", "clone", "-q", str(origin), str(c))
    diff = json.loads(dvc(c, env_c, "metrics", "diff", "--json", "--all", BASE, HEAD).stdout)
    assert {f"metrics/bench/{m}-{bs}.json" for m in MODELS for bs in (1, 8)} <= set(diff)
    assert diff[f"metrics/eval/{MODELS[0]}.json"]["top1"]["diff"] == 0
    # HEAD exists only as origin/HEAD; the per-image predictions are read from the remote, not pulled
    r = omzoo("compare", BASE, HEAD, "--out", tmp_path / "c-out", "--fail-on", "regression", cwd=c, env=env_c, ok=True)
    assert r.stdout.count("+25.0 %") == 2 * 2 * len(MODELS) and "omzoo compare: warning" not in r.stderr
    data = json.loads((tmp_path / "c-out" / "compare.json").read_text())
    assert {v["verdict"] for v in data["verdicts"]} == {"improved"}
    assert [(a["status"], a["n_changed_top1"], a["n_images"]) for a in data["accuracy"]] == [("identical", 0, 16)] * 2
    assert _cache_files(c) == [] and not (c / "models" / "compiled").exists()  # nothing was pulled
    assert _log(tmp_path / "c.log") == []

    # the remote out of reach: compare names the fetch; once run, the predictions come from the local cache
    offline = tmp_path / "dvc-remote-away"
    store.rename(offline)
    r = omzoo("compare", BASE, HEAD, "--out", tmp_path / "c-off", "--no-plots", cwd=c, env=env_c, ok=True)
    fetch = json.loads((tmp_path / "c-off" / "compare.json").read_text())["fetch"][HEAD]
    targets = " ".join(f"models/infer/{m}" for m in sorted(MODELS))
    assert fetch == f"git checkout {HEAD} && dvc fetch {targets} && git checkout -" and f"`{fetch}`" in r.stdout
    offline.rename(store)
    sh(c, env_c, "bash", "-c", fetch)
    assert sh(c, env_c, "git", "branch", "--show-current").stdout.strip() == BASE
    store.rename(offline)
    omzoo("compare", BASE, HEAD, "--out", tmp_path / "c-off", "--no-plots", cwd=c, env=env_c, ok=True)
    data = json.loads((tmp_path / "c-off" / "compare.json").read_text())
    # main's predictions are the same bytes as cann-8.1's, so the same cache entries: nothing left to fetch
    assert data["fetch"] == {} and {(a["status"], a["n_changed_top1"]) for a in data["accuracy"]} == {("identical", 0)}
    offline.rename(store)

    # machine B: the toolkit branch, data pulled, nothing re-executed
    b = tmp_path / "b"
    log_b = tmp_path / "b.log"
    env_b = pipeline_env(log_b)
    sh(tmp_path, env_b, "git", "clone", "-q", str(origin), str(b))
    sh(b, env_b, "git", "checkout", "-q", HEAD)
    dvc(b, env_b, "pull", "-q")
    meta = json.loads((b / "models" / "compiled" / f"{MODELS[0]}-8" / "meta.json").read_text())
    assert meta["toolkit_version"] == "8.1"
    assert json.loads(dvc(b, env_b, "status", "--json").stdout) == {}
    dry = dvc(b, env_b, "repro", "--dry", "--no-run-cache").stdout
    assert "Running stage" not in dry and "up to date" in dry
    dvc(b, env_b, "repro", "--no-run-cache")
    assert _log(log_b) == [], "a stage ran on the machine that only pulled"
    assert sh(b, env_b, "git", "status", "--porcelain").stdout == ""
    r = omzoo("compare", BASE, HEAD, "--out", tmp_path / "b-out", "--no-plots", cwd=b, env=env_b, ok=True)
    assert re.search(r"\| toolkit\.version +\| 8\.0 +\| 8\.1 ", r.stdout) and r.stdout.count("+25.0 %") == 8
