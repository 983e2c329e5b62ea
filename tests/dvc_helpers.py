"""Shared by the pipeline tests (compare, plots, report, remote): a small git+DVC pipeline whose stages run no model;
and, for the tests of the real dvc.yaml (test_pipeline.py, test_toolkits.py), this checkout shrunk to one model.

A stand-in stage (FAKE_STAGE, written to fake_stage.py) writes metrics, per-round samples, info files, DVC-tracked
infer predictions and a "compiled" artefact in the real shapes from params.yaml, its metrics generated from
omzoo.core.metrics.SCHEMA and its info files by the bench and evaluate stages' own functions; the real
`omzoo report` stage runs on them. `Fake` steers what one branch measures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODELS = ("scnet50_v1d", "ran92_cifar10")  # registry ids: the report reads their published figures
BASE, HEAD = "main", "cann-8.1"
SLOW, BUSY = "slow", "busy"  # 2x slower with three changed predictions; contended, failed and other data
FLIPPED = (1, 3, 6)  # the images whose top-1 changes on SLOW, for MODELS[0]: right→wrong, wrong→right, right→wrong

FAKE_STAGE = '''"""Stand-in for omzoo compile, infer, bench and evaluate: outputs in the real shapes, no model.

Every metric it writes is a metric of omzoo.core.metrics.SCHEMA, valued from its unit and name, and the per-round
samples are those of metrics.ROUND_METRICS; the info files are what the real stages build (bench.environment over a
stand-in backend whose describe() is Backend.described's, evaluate.provenance), with the fake's values. So a renamed
or added metric or info field changes what the fake writes, and the tests that read it through report and compare
see the change. fake.yaml steers it: toolkit.speedup scales every throughput; `fake:` names the points (model-bs)
whose rounds stay contended or that run out of memory, the images whose top-1 changes per model, and the dataset's
label (its manifest hash).
"""
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from omzoo.backends.base import Backend
from omzoo.core import metrics, paths, zoo
from omzoo.core.params import BenchConfig
from omzoo.stages.bench import environment
from omzoo.stages.evaluate import provenance
from omzoo.timing import stats

step = sys.argv[1]
p, f = (yaml.safe_load(Path(name).read_text()) for name in ("params.yaml", "fake.yaml"))
tk, fake = {**p["toolkit"], **f["toolkit"]}, f["fake"]
if os.environ.get("OMZOO_TEST_LOG"):  # every execution is recorded: a test can prove a stage did not run
    with open(os.environ["OMZOO_TEST_LOG"], "a") as f:
        f.write(f"{step} {tk['version']}\\n")


def dump(path, obj):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\\n")


LATENCY = {"mean": 1.0, "median": 1.0, "p50": 1.0, "p90": 1.1, "p99": 1.2, "min": 0.9, "max": 1.3, "std": 0.01}
ROUNDS, SPREAD = 5, 0.02  # kept rounds per point, and their relative spread (seeded normal noise)


def value(m, bs, ips):
    """A plausible value for schema metric `m` of a run (or one round) at `ips` img/s compute (e2e 10 % slower)."""
    leaf = m.name.rpartition(".")[2]
    if m.unit == "img/s":
        return ips * (0.9 if "e2e" in m.name else 1.0)
    if m.unit == "ms":
        return 1000.0 * bs / ips * LATENCY[leaf]
    return {"bs": bs, "n_images": fake["images"], "random_weights": 1, "iters": 20 * ROUNDS, "count": 20 * ROUNDS,
            "warmup_iters_done": 5, "duration_s": 2.0, "rounds": ROUNDS}.get(leaf, 0)


def bench(i, m, bs):
    """The metrics file and the rounds file of one point (no rounds file when it ran out of memory)."""
    key = paths.key(m, bs)
    if key in fake["failed"]:
        return metrics.record("bench", {"bs": bs, "failed": 1}), None
    ips = 100.0 * (i + 1) * bs * tk["speedup"]
    z = np.random.default_rng([fake["seed"], i, bs]).standard_normal(ROUNDS)
    tput = ips * (1 + SPREAD * (z - np.median(z)))  # the median round is exactly `ips`, on every branch
    samples = {n: [value(metrics.get("bench", n), bs, t) for t in tput] for n in metrics.ROUND_METRICS}
    flat = {s.name: float(np.median(samples[s.name])) if s.name in samples else value(s, bs, ips)
            for s in metrics.of("bench")}
    contended = int(key in fake["contended"])
    for n in samples:
        if n.endswith("_ips"):
            iv = stats.median_interval(samples[n])
            stem = n.removesuffix("_ips")
            flat.update({f"{stem}_ci_low": iv.low, f"{stem}_ci_high": iv.high, f"{stem}_cv": iv.cv,
                         "ci_coverage": iv.coverage})
    flat.update(contended=contended, rounds_contended=2 * contended, retries=2 * contended,
                others_cores_max=0.8 if contended else 0.01, failed=0)
    kept = [{**{n: v[r] for n, v in samples.items()}, "iters": 20, "duration_s": 0.4, "contended": contended,
             "others_cores": 0.8 if contended else 0.01, "steal_cores": 0.0, "kept": 1} for r in range(ROUNDS)]
    redone = [{**kept[0], "contended": 1, "others_cores": 0.9, "kept": 0}] * (2 * contended)
    rounds = {"model": m, "bs": bs, "level": 0.95, "samples": samples, "rounds": redone + kept,
              "interval": "order statistics of the rounds (binomial, distribution-free)", "contended": contended}
    return metrics.record("bench", flat), rounds


def loaded(meta):
    """What bench.environment asks of a loaded backend: describe() built by Backend.described (so with exactly
    DESCRIBE_KEYS, as every backend's), its input, and no accelerator."""
    described = Backend.described(SimpleNamespace(name=meta["backend"]), runtime="onnxruntime",
                                  runtime_version=meta["toolkit_version"], device="test cpu", precision="fp32",
                                  threads="intra_op=2 inter_op=1", driver_version="570.1")
    shape = (meta["batch_size"], *zoo.get(meta["model"]).input_size)
    return SimpleNamespace(describe=lambda: described, input_spec=lambda: (shape, np.dtype(np.uint8)),
                           accelerator=lambda: None)


def predictions(m):
    """Labels and top-1 of `fake.images` images: 3 in 4 right, and fake.flip[m] changes those images' top-1."""
    labels = np.arange(fake["images"]) % 10
    top1 = np.where(np.arange(fake["images"]) % 4 == 3, (labels + 1) % 10, labels)
    for i in fake["flip"].get(m, []):
        top1[i] = labels[i] if top1[i] != labels[i] else (labels[i] + 2) % 10
    return labels, top1


for i, m in enumerate(p["models"]):
    if step == "infer":
        labels, top1 = predictions(m)
        out = paths.inferred(m)
        out.mkdir(parents=True, exist_ok=True)
        logits = np.zeros((len(top1), 10), np.float32)  # top-5 = top1, top1+1, ... in that order
        np.put_along_axis(logits, (top1[:, None] + np.arange(5)) % 10, np.arange(5, 0, -1, dtype=np.float32), 1)
        np.save(out / "logits.npy", logits)
        dump(paths.predictions(m), {"model": m, "backend": "onnxruntime", "shards_hash": fake["data"] * 8,
                                    "names": [f"img_{j:04d}.jpg" for j in range(len(labels))],
                                    "labels": labels.tolist(), "predicted": top1.tolist()})
    for bs in p["batch_sizes"]:
        art = paths.compiled(m, bs)
        if step == "compile":
            dump(art / "meta.json", {"model": m, "batch_size": bs, "backend": "onnxruntime", "artefact": "model.fake",
                                     "toolkit_version": tk["version"]})
            (art / "model.fake").write_text(f"{m} bs{bs} for {tk['version']}\\n")
            continue
        if step != "measure":
            continue
        meta = json.loads((art / "meta.json").read_text())
        numbers, rounds = bench(i, m, bs)
        dump(paths.bench_metrics(m, bs), numbers)
        info = environment(loaded(meta), meta, art, BenchConfig(), [])
        if rounds is None:
            info["error"] = "out of memory"  # what bench.run adds to the info of a run that ran out of memory
        else:
            dump(paths.bench_rounds(m, bs), rounds)
        dump(paths.bench_info(m, bs), info)
    if step == "measure":
        labels = np.asarray(json.loads(paths.predictions(m).read_text())["labels"])
        accuracy = metrics.topk_accuracy(metrics.topk(np.load(paths.inferred(m) / "logits.npy")), labels)
        flat = {e.name: accuracy.get(e.name) if e.unit == "%" else value(e, 0, 0.0) for e in metrics.of("eval")}
        dump(paths.eval_metrics(m), metrics.record("eval", {k: v for k, v in flat.items() if v is not None}))
        weights = {"weights": "random", "seed": 0, "sha256": "c0ffee" * 10 + "abcd"}
        shards = SimpleNamespace(hash=fake["data"] * 8, manifest={"source": "data/sample/imagenet/val", "skipped": [],
                                                                  "pixels": zoo.get(m).recipe.pixels})
        dump(paths.eval_info(m), provenance(m, "onnxruntime", weights, shards))
'''

DVC_YAML = """stages:
  compile:
    cmd: python fake_stage.py compile
    deps: [fake_stage.py]
    params: [toolkit, models, batch_sizes, {fake.yaml: [toolkit]}]
    outs: [models/compiled]
  infer:
    cmd: python fake_stage.py infer
    deps: [fake_stage.py, models/compiled]
    params: [toolkit, models, {fake.yaml: [toolkit, fake]}]
    outs: [models/infer]
  measure:
    cmd: python fake_stage.py measure
    deps: [fake_stage.py, models/compiled, models/infer]
    params: [toolkit, models, batch_sizes, {fake.yaml: [toolkit, fake]}]
    outs:
      - metrics/bench: {cache: false}
      - metrics/rounds: {cache: false}
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
      - reports/frontier.png: {cache: false}
metrics: [metrics/eval, metrics/bench]
plots:
  - throughput:
      template: bar_horizontal
      x: throughput_compute_ips
      y: {reports/throughput.csv: config}
"""


@dataclass(frozen=True)
class Fake:
    """What the stand-in stages measure on one branch besides its speed (params.yaml `fake:`)."""

    contended: tuple[str, ...] = ()  # points (model-bs-precision) whose kept rounds stay contended
    failed: tuple[str, ...] = ()  # points that run out of memory: a metrics file with failed: 1, no rounds
    flip: dict[str, list[int]] = field(default_factory=dict)  # per model, the images whose top-1 changes
    data: str = "d1a7a5e7"  # the dataset's label: its manifest hash is this, eight times
    images: int = 16
    seed: int = 0  # the rounds' noise; the same on every branch, so equal speeds give the same samples (A/A)


def write_params(repo: Path, version: str, speedup: float, fake: Fake = Fake()) -> None:
    """A valid params.yaml (omzoo report validates it, and refuses keys it does not know), and beside it fake.yaml,
    the fake's own `toolkit.speedup` and `fake:` (DVC diffs both files' params)."""
    from omzoo.core import zoo

    pixels = {zoo.get(m).recipe.pixels for m in MODELS}
    shards = "\n".join(f"  {p}: {{data: data/{p}, labels: data/{p}}}" for p in sorted(pixels))
    models = "\n".join(f"  {m}: {{checkpoint: '', pixels: {zoo.get(m).recipe.pixels}}}" for m in MODELS)
    (repo / "params.yaml").write_text(
        f'toolkit: {{version: "{version}"}}\nbackend: onnxruntime\ndatasets:\n{shards}\n'
        f"models:\n{models}\nbatch_sizes: [1, 8]\ninfer: {{batch_size: 8}}\n"
        f"report: {{platforms: [310P, '310', T4]}}\n")
    (repo / "fake.yaml").write_text(f"toolkit: {{speedup: {speedup}}}\nfake: {json.dumps(asdict(fake))}\n")


ROOT = Path(__file__).resolve().parents[1]


def copy_checkout(dst: Path) -> None:
    """This checkout as a fresh clone has it (tracked files, plus this working tree's edits), without its results
    (metrics, reports, dvc.lock), for a pipeline run from scratch."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file() and not f.startswith(("metrics/", "reports/")) and f != "dvc.lock":
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


def tiny_checkout(dst: Path, env: dict[str, str], model: str, **sections: dict[str, Any]) -> None:
    """This checkout (copy_checkout) as a fresh git repository on main, committed, its params.yaml shrunk for a test
    run of the real dvc.yaml: one model, batch sizes 1 and 4 with infer at 4, and each of `sections` merged over
    that params section (a test's own bench settings, say)."""
    copy_checkout(dst)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["models"] = {model: params["models"][model]}
    params["batch_sizes"] = [1, 4]
    params["infer"]["batch_size"] = 4
    for name, values in sections.items():
        params[name].update(values)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(dst, env, "git", "init", "-q", "-b", BASE)
    sh(dst, env, "git", "add", "-A")
    sh(dst, env, "git", "commit", "-qm", "tiny omzoo")


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


def init_pipeline(repo: Path, env: dict[str, str], remote: Path | None = None, git_init: bool = True) -> None:
    """The small pipeline on main (toolkit 8.0), committed; a local-directory default remote if given."""
    repo.mkdir(parents=True, exist_ok=True)
    if git_init:
        sh(repo, env, "git", "init", "-q", "-b", BASE)
    dvc(repo, env, "init", "-q")
    (repo / "fake_stage.py").write_text(FAKE_STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write_params(repo, "8.0", 1.0)
    if remote is not None:
        dvc(repo, env, "remote", "add", "-d", "shared", str(remote))
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", "pipeline")


def run_branch(repo: Path, env: dict[str, str], branch: str, version: str, speedup: float, fake: Fake = Fake(),
               start: str | None = None) -> None:
    """What one machine does for its toolkit branch: set the toolkit, repro (no run-cache), commit results.
    A new branch starts from `start` (default: what is checked out)."""
    if branch != BASE:
        sh(repo, env, "git", "checkout", "-q", "-b", branch, *([start] if start else []))
    write_params(repo, version, speedup, fake)
    dvc(repo, env, "repro", "--no-run-cache")
    sh(repo, env, "git", "add", "-A")
    sh(repo, env, "git", "commit", "-qm", f"results: toolkit {version}")


def toolkit_branches(root: Path) -> tuple[Path, dict[str, str]]:
    """main (toolkit 8.0) and cann-8.1 (25 % faster, same predictions), committed; main checked out."""
    env = pipeline_env(root / "runs.log")
    path = root / "repo"
    init_pipeline(path, env)
    run_branch(path, env, BASE, "8.0", 1.0)
    run_branch(path, env, HEAD, "8.1", 1.25)
    sh(path, env, "git", "checkout", "-q", BASE)
    dvc(path, env, "checkout", "-q")
    return path, env


def add_problem_branches(path: Path, env: dict[str, str]) -> None:
    """SLOW (2x slower, FLIPPED images of MODELS[0] change top-1) and BUSY (same speed and predictions as main,
    but one point contended, one out of memory, and another dataset), both from main; main checked out again."""
    run_branch(path, env, SLOW, "8.2", 0.5, Fake(flip={MODELS[0]: list(FLIPPED)}), start=BASE)
    run_branch(path, env, BUSY, "8.3", 1.0, Fake(contended=(f"{MODELS[0]}-8-fp32",), failed=(f"{MODELS[1]}-1-fp32",),
                                                 data="da7a0002"), start=BASE)
    sh(path, env, "git", "checkout", "-q", BASE)
    dvc(path, env, "checkout", "-q")
