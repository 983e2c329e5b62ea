"""Shared by test_compare.py and test_remote.py: a small git+DVC pipeline whose stages run no model.

A stand-in stage (FAKE_STAGE, written to fake_stage.py) writes metrics, info files and a "compiled" artefact in
the real shapes from params.yaml, its metrics generated from omzoo.metrics.SCHEMA; the real `omzoo report` stage
runs on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODELS = ("scnet50_v1d", "ran92_cifar10")  # registry ids: the report reads their published figures
BASE, HEAD = "main", "cann-8.1"

FAKE_STAGE = '''"""Stand-in for omzoo compile / bench+evaluate: outputs in the real shapes from params.yaml, no model.

Every metric it writes is a metric of omzoo.metrics.SCHEMA, valued from its unit and name, so a renamed or added
metric changes what the fake writes and the tests that read it through report and compare see the change.
"""
import json
import os
import sys
from pathlib import Path

import yaml

from omzoo import metrics, paths

step = sys.argv[1]
p = yaml.safe_load(Path("params.yaml").read_text())
tk = p["toolkit"]
if os.environ.get("OMZOO_TEST_LOG"):  # every execution is recorded: a test can prove a stage did not run
    with open(os.environ["OMZOO_TEST_LOG"], "a") as f:
        f.write(f"{step} {tk['version']}\\n")


def dump(path, obj):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\\n")


LATENCY = {"mean": 1.0, "median": 1.0, "p50": 1.0, "p90": 1.1, "p99": 1.2, "min": 0.9, "max": 1.3, "std": 0.01}
ACCURACY = {"top1": 12.5, "top2": 20.0, "top3": 25.0, "top4": 31.25, "top5": 37.5}


def value(m, bs, ips):
    """A plausible value for schema metric `m` of a run at `ips` img/s compute (e2e is 10 % slower)."""
    leaf = m.name.rpartition(".")[2]
    if m.unit == "img/s":
        return round(ips * (0.9 if "e2e" in m.name else 1.0), 4)
    if m.unit == "ms":
        return round(1000.0 * bs / ips * LATENCY[leaf], 4)
    if m.unit == "%":
        return ACCURACY.get(m.name)
    return {"bs": bs, "n_images": 16, "random_weights": 1, "iters": 20, "count": 20, "warmup_iters_done": 5,
            "duration_s": 2.0}.get(leaf, 0)


def fake(stage, bs=0, ips=0.0):
    flat = {m.name: value(m, bs, ips) for m in metrics.of(stage)}
    return metrics.record(stage, {k: v for k, v in flat.items() if v is not None})


for i, m in enumerate(p["models"]):
    for bs in p["batch_sizes"]:
        art = paths.compiled(m, bs) / "meta.json"
        if step == "compile":
            dump(art, {"model": m, "batch_size": bs, "backend": "onnxruntime", "toolkit_version": tk["version"]})
            continue
        if step != "measure":
            continue
        meta = json.loads(Path(art).read_text())
        dump(paths.bench_metrics(m, bs), fake("bench", bs, 100.0 * (i + 1) * bs * tk["speedup"]))
        dump(paths.bench_info(m, bs), {
            "model": m, "batch_size": bs, "backend": meta["backend"], "runtime": "onnxruntime",
            "runtime_version": meta["toolkit_version"], "toolkit_version": meta["toolkit_version"],
            "device": "test cpu", "precision": "fp32", "threads": "intra_op=2 inter_op=1",
            "extra": {"driver_version": "570.1"}, "git_revision": "abc1234"})
    if step == "measure":
        dump(paths.eval_metrics(m), fake("eval"))
        dump(paths.eval_info(m), {
            "model": m, "backend": "onnxruntime", "weights": "random", "weights_source": "random, seed 0",
            "checkpoint_sha256": "c0ffee" * 10 + "abcd", "dataset": "data/sample/imagenet/val",
            "dataset_manifest": "d1a7a5e7" * 8, "git_revision": "abc1234"})
'''

DVC_YAML = """stages:
  compile:
    cmd: python fake_stage.py compile
    deps: [fake_stage.py]
    params: [toolkit, models, batch_sizes]
    outs: [models/compiled]
  measure:
    cmd: python fake_stage.py measure
    deps: [fake_stage.py, models/compiled]
    params: [toolkit, models, batch_sizes]
    outs:
      - metrics/bench: {cache: false}
      - metrics/eval: {cache: false}
      - metrics/info: {cache: false}
  report:
    cmd: python fake_stage.py report && omzoo report --params params.yaml --out reports
    deps: [metrics/eval, metrics/bench, metrics/info]
    params: [models, batch_sizes, backend, toolkit, report]
    outs:
      - reports/summary.md: {cache: false}
      - reports/throughput.csv: {cache: false}
      - reports/throughput.png: {cache: false}
metrics: [metrics/eval, metrics/bench]
plots:
  - throughput:
      template: bar_horizontal
      x: throughput_compute_ips
      y: {reports/throughput.csv: config}
"""


def params_yaml(version: str, speedup: float) -> str:
    """A valid params.yaml (omzoo report validates it) plus the fake's own `toolkit.speedup`."""
    from omzoo import zoo

    pixels = {zoo.get(m).recipe.pixels for m in MODELS}
    shards = "\n".join(f"  {p}: {{data: data/{p}, labels: data/{p}}}" for p in sorted(pixels))
    models = "\n".join(f"  {m}: {{checkpoint: '', shards: {zoo.get(m).recipe.pixels}}}" for m in MODELS)
    return (f'toolkit: {{version: "{version}", speedup: {speedup}}}\nbackend: onnxruntime\nshards:\n{shards}\n'
            f"models:\n{models}\nbatch_sizes: [1, 8]\ninfer: {{batch_size: 8}}\n"
            "report: {platforms: [310P, 310, T4]}\n")


def pipeline_env(log: Path | None = None) -> dict[str, str]:
    """This interpreter's bin first (python, omzoo, dvc), no analytics, git identity without global config."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="omzoo test", GIT_AUTHOR_EMAIL="test@omzoo.invalid",
               GIT_COMMITTER_NAME="omzoo test", GIT_COMMITTER_EMAIL="test@omzoo.invalid")
    if log is not None:
        env["OMZOO_TEST_LOG"] = str(log)
    return env


def sh(cwd: Path, env: dict[str, str], *cmd: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def dvc(cwd: Path, env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(cwd, env, sys.executable, "-m", "dvc", *args, ok=ok)


def omzoo(cwd: Path, env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return sh(cwd, env, sys.executable, "-m", "omzoo.cli", *args, ok=ok)


def init_pipeline(repo: Path, env: dict[str, str], remote: Path | None = None, git_init: bool = True) -> None:
    """The small pipeline on main (toolkit 8.0), committed; a local-directory default remote if given."""
    repo.mkdir(parents=True, exist_ok=True)
    if git_init:
        sh(repo, env, "git", "init", "-q", "-b", BASE)
    dvc(repo, env, "init", "-q")
    (repo / "fake_stage.py").write_text(FAKE_STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(params_yaml("8.0", 1.0))
    if remote is not None:
        dvc(repo, env, "remote", "add", "-d", "shared", str(remote))
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", "pipeline")


def run_branch(repo: Path, env: dict[str, str], branch: str, version: str, speedup: float) -> None:
    """What one machine does for its toolkit branch: set the toolkit, repro (no run-cache), commit results."""
    if branch != BASE:
        sh(repo, env, "git", "checkout", "-q", "-b", branch)
    (repo / "params.yaml").write_text(params_yaml(version, speedup))
    dvc(repo, env, "repro", "--no-run-cache")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", f"results: toolkit {version}")
