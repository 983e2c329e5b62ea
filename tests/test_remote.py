"""The scale-out recipe (docs/dvc.md §13) with a local-directory remote: one clone per toolkit branch.

Clone A measures main and cann-8.1 and pushes data (DVC remote) and results (git). Clone B checks out the
toolkit branch, `dvc pull`s, and finds nothing to re-run: no stage command executes (each one appends to a
log). Clone C compares the two branches without pulling anything: the metrics live in git (cache: false) and
the per-image predictions are streamed from the remote; with the remote out of reach it names the fetch.

Then the real dvc.yaml against a real S3 remote (dvc-s3 and moto's server on 127.0.0.1, started here; credentials
only in .dvc/config.local): the first clone measures and pushes, run-cache included; the second pulls, re-runs
nothing, re-measures bench where a run-cache could have restored it (`dvc pull --run-cache && dvc repro`, `dvc exp
run`), and after an in-place toolkit upgrade re-runs exactly the stages that depend on the toolkit. And an SSH
remote (dvc-ssh against an asyncssh SFTP server on 127.0.0.1) for the small pipeline.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cli_helpers import omzoo
from dvc_helpers import BASE, HEAD, MODELS, dvc, init_pipeline, pipeline_env, run_branch, sh, tiny_checkout

from omzoo.core import paths

pytestmark = pytest.mark.pipeline


def _log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _cache_files(repo: Path) -> list[Path]:
    cache = repo / ".dvc" / "cache"
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


@pytest.mark.slow  # three clones and a remote: about a minute
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
    assert {f"metrics/bench/{m}-{bs}-fp32.json" for m in MODELS for bs in (1, 8)} <= set(diff)
    assert diff[f"metrics/eval/{MODELS[0]}/fp32.json"]["top1"]["diff"] == 0
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
    meta = json.loads((b / paths.compiled(MODELS[0], 8) / "meta.json").read_text())
    assert meta["toolkit_version"] == "8.1"
    assert json.loads(dvc(b, env_b, "status", "--json").stdout) == {}
    dry = dvc(b, env_b, "repro", "--dry", "--no-run-cache").stdout
    assert "Running stage" not in dry and "up to date" in dry
    dvc(b, env_b, "repro", "--no-run-cache")
    assert _log(log_b) == [], "a stage ran on the machine that only pulled"
    assert sh(b, env_b, "git", "status", "--porcelain").stdout == ""
    r = omzoo("compare", BASE, HEAD, "--out", tmp_path / "b-out", "--no-plots", cwd=b, env=env_b, ok=True)
    assert re.search(r"\| toolkit\.version +\| 8\.0 +\| 8\.1 ", r.stdout) and r.stdout.count("+25.0 %") == 8


# ---------------------------------------------------------------------------------------------- a real S3 remote

MODEL = "ran92_cifar10"
BUCKET = "omzoo-results"
#: another onnxruntime than constraints.txt's, installed beside the venv: an in-place upgrade of the toolkit
OTHER_ORT = "1.31.1"
STAGES = re.compile(r"Running stage '([^']+)'")


@pytest.fixture
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port) with one bucket; its endpoint URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="omzoo",
                 aws_secret_access_key="omzoo-secret").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _s3_env(tmp_path: Path) -> dict[str, str]:
    """No AWS credentials but .dvc/config.local's: none in the environment or a profile (empty AWS files; dvc-s3
    wants them to exist), and no instance-metadata lookup."""
    empty = tmp_path / "aws-empty.ini"
    empty.touch()
    env = {k: v for k, v in pipeline_env().items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(empty), AWS_CONFIG_FILE=str(empty), AWS_EC2_METADATA_DISABLED="true",
               NO_PROXY="127.0.0.1,localhost")
    return env


def _credentials(repo: Path, env: dict[str, str]) -> None:
    dvc(repo, env, "remote", "modify", "--local", "shared", "access_key_id", "omzoo")
    dvc(repo, env, "remote", "modify", "--local", "shared", "secret_access_key", "omzoo-secret")


def _ran(out: str) -> list[str]:
    return STAGES.findall(out)


def _set(repo: Path, section: str, **values: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_s3_remote_two_clones_run_cache_and_an_in_place_upgrade(tmp_path: Path, s3: str) -> None:
    env = _s3_env(tmp_path)
    origin, a, b = tmp_path / "origin.git", tmp_path / "a", tmp_path / "b"
    sh(tmp_path, env, "git", "init", "-q", "--bare", "-b", BASE, str(origin))

    # clone A: one model at bs 1, tiny bench; the remote's URL committed, its credentials only in config.local
    tiny_checkout(a, env, MODEL, bench={"warmup_iters": 1, "warmup_s": 0.05, "min_iters": 2, "min_s": 0.05,
                                        "rounds": 3, "max_retries": 1, "retry_budget_s": 2.0, "seed": 0})
    params = yaml.safe_load((a / "params.yaml").read_text())
    params.update(batch_sizes=[1], infer={"batch_size": 1},
                  datasets={"cifar32": params["datasets"]["cifar32"]})
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(a, env, "remote", "add", "-d", "shared", f"s3://{BUCKET}/dvc")
    dvc(a, env, "remote", "modify", "shared", "endpointurl", s3)
    _credentials(a, env)
    assert "omzoo-secret" not in (a / ".dvc" / "config").read_text()
    sh(a, env, "git", "remote", "add", "origin", str(origin))
    sh(a, env, "git", "add", "-A")
    sh(a, env, "git", "commit", "-qm", "one model, the shared S3 remote")
    assert ".dvc/config.local" not in sh(a, env, "git", "ls-files").stdout.split()

    first = dvc(a, env, "repro").stdout  # a CI recipe's plain `dvc repro`, run-cache on
    assert {"toolkit", f"compile@{MODEL}-1-fp32", f"bench@{MODEL}-1-fp32", "report"} <= set(_ran(first))
    rounds = f"metrics/rounds/{MODEL}-1-fp32.json"
    seed0 = (a / rounds).read_text()
    sh(a, env, "git", "add", "-A")
    sh(a, env, "git", "commit", "-qm", "results: bench seed 0")
    _set(a, "bench", seed=1)
    assert _ran(dvc(a, env, "repro").stdout) == ["toolkit", f"bench@{MODEL}-1-fp32", "report"]
    sh(a, env, "git", "add", "-A")
    sh(a, env, "git", "commit", "-qm", "results: bench seed 1")
    dvc(a, env, "push", "-q", "--run-cache")
    sh(a, env, "git", "push", "-q", "-u", "origin", BASE)

    # clone B: without credentials the remote refuses; with them, everything pulled and nothing re-runs
    sh(tmp_path, env, "git", "clone", "-q", str(origin), str(b))
    assert dvc(b, env, "pull", "-q", ok=False).returncode != 0
    _credentials(b, env)
    dvc(b, env, "pull", "-q", "--run-cache")
    assert _ran(dvc(b, env, "repro", "--no-run-cache").stdout) == ["toolkit"]
    assert sh(b, env, "git", "status", "--porcelain").stdout == ""

    # bench at the params A measured first: a run-cache entry would restore seed0's file; bench measures again
    _set(b, "bench", seed=0)
    again = dvc(b, env, "repro").stdout
    assert _ran(again) == ["toolkit", f"bench@{MODEL}-1-fp32", "report"] and "is cached" not in again
    assert json.loads((b / rounds).read_text())["samples"] != json.loads(seed0)["samples"]
    sh(b, env, "git", "checkout", "-q", "--", ".")
    exp = dvc(b, env, "exp", "run", "-S", "bench.seed=0").stdout  # exp run takes no --no-run-cache
    assert _ran(exp) == ["toolkit", f"bench@{MODEL}-1-fp32", "report"] and "is cached" not in exp
    sh(b, env, "git", "checkout", "-q", "--", ".")

    # an in-place upgrade (another onnxruntime ahead of the venv's): compile and what follows it, nothing upstream
    overlay = tmp_path / "onnxruntime-other"
    sh(tmp_path, env, str(Path(sys.executable).with_name("uv")), "pip", "install", "-q", "--python", sys.executable,
       "--no-deps", "--target", str(overlay), f"onnxruntime=={OTHER_ORT}")
    upgraded = {**env, "PYTHONPATH": str(overlay)}
    ran = _ran(dvc(b, upgraded, "repro", "--no-run-cache").stdout)
    assert sorted(ran) == sorted(["toolkit", f"compile@{MODEL}-1-fp32", f"infer@{MODEL}", f"evaluate@{MODEL}",
                                  f"bench@{MODEL}-1-fp32", "report"]), ran
    toolkit = json.loads((b / "metrics/toolkit.json").read_text())
    assert toolkit["toolkit"]["runtime_version"] == OTHER_ORT
    for info in (f"metrics/info/bench/{MODEL}-1-fp32.json", f"metrics/info/eval/{MODEL}/fp32.json"):
        assert json.loads((b / info).read_text())["toolkit_fingerprint"] == toolkit["toolkit_fingerprint"]
    assert json.loads((b / f"metrics/info/bench/{MODEL}-1-fp32.json").read_text())["runtime_version"] == OTHER_ORT
    assert OTHER_ORT in (b / "reports/summary.md").read_text()


# ---------------------------------------------------------------------------------------------- an SSH remote


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An SFTP server (asyncssh, what dvc-ssh itself speaks) on 127.0.0.1, a free port, accepting one client key:
    its port and that key's file."""
    import asyncio
    import threading

    import asyncssh

    host_key, client_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    keyfile = tmp_path / "id_ed25519"
    client_key.write_private_key(str(keyfile))
    keyfile.chmod(0o600)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    async def listen() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], authorized_client_keys=authorized,
                                     sftp_factory=True)

    server = asyncio.run_coroutine_threadsafe(listen(), loop).result(30)
    yield server.sockets[0].getsockname()[1], keyfile
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_ssh_remote_push_and_pull(tmp_path: Path, sftp: tuple[int, Path]) -> None:
    """The `.[ssh]` extra against a real SSH server: A pushes, B pulls with its key in .dvc/config.local only, and
    re-runs nothing; without the key B gets nothing."""
    port, keyfile = sftp
    store, origin = tmp_path / "store", tmp_path / "origin.git"
    store.mkdir()
    env_a = pipeline_env(tmp_path / "a.log")
    sh(tmp_path, env_a, "git", "init", "-q", "--bare", "-b", BASE, str(origin))
    a = tmp_path / "a"
    sh(tmp_path, env_a, "git", "clone", "-q", str(origin), str(a))
    init_pipeline(a, env_a, git_init=False)
    dvc(a, env_a, "remote", "add", "-d", "shared", f"ssh://omzoo@127.0.0.1:{port}{store}")
    dvc(a, env_a, "remote", "modify", "--local", "shared", "keyfile", str(keyfile))
    run_branch(a, env_a, BASE, "8.0", 1.0)
    dvc(a, env_a, "push", "-q")
    sh(a, env_a, "git", "push", "-q", "-u", "origin", BASE)
    assert any(p.is_file() for p in store.rglob("*")) and "keyfile" not in (a / ".dvc" / "config").read_text()

    b, log_b = tmp_path / "b", tmp_path / "b.log"
    env_b = pipeline_env(log_b)
    sh(tmp_path, env_b, "git", "clone", "-q", str(origin), str(b))
    assert dvc(b, env_b, "pull", "-q", ok=False).returncode != 0  # no key: the server refuses
    dvc(b, env_b, "remote", "modify", "--local", "shared", "keyfile", str(keyfile))
    dvc(b, env_b, "pull", "-q")
    assert json.loads(dvc(b, env_b, "status", "--json").stdout) == {}
    assert (b / "models" / "infer" / MODELS[0] / "fp32" / "predictions.json").read_bytes() == \
        (a / "models" / "infer" / MODELS[0] / "fp32" / "predictions.json").read_bytes()
    dvc(b, env_b, "repro", "--no-run-cache")
    assert _log(log_b) == []
