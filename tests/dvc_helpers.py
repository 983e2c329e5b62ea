"""Shared by test_compare.py and test_remote.py: a small git+DVC pipeline whose stages run no model.

A stand-in stage (FAKE_STAGE, written to fake_stage.py) writes metrics, info files and a "compiled" artefact in
the real shapes from params.yaml; the real `omzoo report` stage runs on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODELS = ("scnet50_v1d", "ran92_cifar10")  # registry ids: the report reads their published figures
BASE, HEAD = "main", "cann-8.1"

FAKE_STAGE = '''"""Stand-in for omzoo compile / bench+evaluate: realistic-shape outputs from params.yaml, no model."""
import json
import os
import sys
from pathlib import Path

import yaml

step = sys.argv[1]
p = yaml.safe_load(Path("params.yaml").read_text())
tk = p["toolkit"]
if os.environ.get("OMZOO_TEST_LOG"):  # every execution is recorded: a test can prove a stage did not run
    with open(os.environ["OMZOO_TEST_LOG"], "a") as f:
        f.write(f"{step} {tk['version']}\\n")


def dump(path, obj):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\\n")


for i, m in enumerate(p["models"]):
    for bs in p["batch_sizes"]:
        art = f"models/compiled/{m}-{bs}/meta.json"
        if step == "compile":
            dump(art, {"model": m, "batch_size": bs, "backend": "onnxruntime", "toolkit_version": tk["version"]})
            continue
        if step != "measure":
            continue
        meta = json.loads(Path(art).read_text())
        ips = round(100.0 * (i + 1) * bs * tk["speedup"], 4)
        ms = 1000.0 * bs / ips
        lat = {k: round(ms * f, 4) for k, f in
               (("mean", 1.0), ("median", 1.0), ("p50", 1.0), ("p90", 1.1), ("p99", 1.2), ("min", 0.9), ("max", 1.3))}
        dump(f"metrics/bench/{m}-{bs}.json", {
            "bs": bs, "iters": 20, "duration_s": 2.0, "warmup_iters_done": 5, "capped": 0,
            "throughput_compute_ips": ips, "throughput_e2e_ips": round(0.9 * ips, 4),
            "e2e_ms": {**lat, "std": 0.01, "count": 20}, "compute_ms": {**lat, "std": 0.01, "count": 20}})
        dump(f"metrics/info/bench/{m}-{bs}.json", {
            "model": m, "batch_size": bs, "backend": meta["backend"], "toolkit_version": meta["toolkit_version"],
            "versions": f"onnxruntime={meta['toolkit_version']} numpy=2.0", "device": "test cpu", "precision": "fp32",
            "git_revision": "abc1234"})
    if step == "measure":
        dump(f"metrics/eval/{m}.json", {"top1": 12.5, "top2": 20.0, "top3": 25.0, "top4": 31.25, "top5": 37.5,
                                        "n_images": 16, "n_skipped": 0, "random_weights": 1})
        dump(f"metrics/info/eval/{m}.json", {
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
    models = "\n".join(f"  {m}: {{checkpoint: ''}}" for m in MODELS)
    return (f'toolkit: {{version: "{version}", speedup: {speedup}}}\nbackend: onnxruntime\nmodels:\n{models}\n'
            "batch_sizes: [1, 8]\nreport: {platforms: [310P, 310, T4]}\n")


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
