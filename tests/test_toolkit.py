"""The `toolkit` stage (`omzoo toolkit`): the configured backend's fingerprint in metrics/toolkit.json, written only
when it changes, fast enough to run on every `dvc repro`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import error_line, omzoo
from dvc_helpers import dvc, pipeline_env

from omzoo.backends.base import get_backend
from omzoo.core.provenance import FINGERPRINT, fingerprint_hash, read_fingerprint

ROOT = Path(__file__).resolve().parents[1]


def test_it_records_the_backends_fingerprint_once(tmp_path: Path) -> None:
    out = tmp_path / "metrics" / "toolkit.json"
    r = omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, ok=True)
    want = get_backend("onnxruntime", {}).fingerprint()
    assert read_fingerprint(out) == (fingerprint_hash(want), want)
    assert f"toolkit {fingerprint_hash(want)}: onnxruntime " in r.stdout and "unchanged" not in r.stdout
    before = out.stat().st_mtime_ns
    again = omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, ok=True)
    assert "(unchanged)" in again.stdout and out.stat().st_mtime_ns == before
    # another backend's options are another toolkit: its threads are part of it
    one = omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, "-S", "onnxruntime.threads=1", ok=True)
    assert "unchanged" not in one.stdout and json.loads(out.read_text())["toolkit"]["threads"].startswith("intra_op=1 ")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two usable cores")
def test_a_host_with_fewer_cores_is_another_fingerprint(tmp_path: Path) -> None:
    """The same toolkit on fewer usable cores (a container's CPU limit) measures another machine."""
    out = tmp_path / "toolkit.json"
    omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, ok=True)
    first = read_fingerprint(out)[0]
    subprocess.run([str(Path(sys.executable).with_name("omzoo")), "toolkit", "--params", str(ROOT / "params.yaml"),
                    "--out", str(out)], check=True, capture_output=True,
                   preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    assert read_fingerprint(out)[0] != first and json.loads(out.read_text())["toolkit"]["cores"] == "1"


def test_it_is_light_it_imports_no_other_runtime(tmp_path: Path) -> None:
    """It runs on every `dvc repro`: for onnxruntime it loads neither torch nor a model."""
    code = ("import sys; from omzoo import cli\n"
            "rc = cli.main(['toolkit', '--params', sys.argv[1], '--out', sys.argv[2]])\n"
            "print(sorted(m for m in ('torch', 'onnx', 'omzoo.arch', 'omzoo.data') if m in sys.modules)); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(ROOT / "params.yaml"), str(tmp_path / "t.json")],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_a_backend_that_cannot_run_here_is_one_line(tmp_path: Path) -> None:
    """On a host without CANN an acl branch cannot say what it would measure: one line, nothing written."""
    if shutil.which("atc"):
        pytest.skip("this host has an Ascend toolkit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASCEND")}
    r = omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", tmp_path / "t.json", "-S", "backend=acl",
              "-S", f"acl.cann_home={tmp_path / 'no-cann'}", env=env)
    assert "acl" in error_line(r, "toolkit") and not (tmp_path / "t.json").exists()


def test_the_committed_file_is_a_toolkit_file() -> None:
    """metrics/toolkit.json, committed with the results, names the toolkit they were measured under."""
    path = ROOT / "metrics" / "toolkit.json"
    if not path.exists():
        pytest.skip("no results committed yet")
    recorded, fp = read_fingerprint(path)
    infos = [json.loads(p.read_text()) for p in (ROOT / "metrics" / "info").rglob("*.json")]
    assert all(i.get(FINGERPRINT) == recorded for i in infos if FINGERPRINT in i) and fp["backend"]


def test_it_writes_the_constant_params_check_once_the_params_are_valid(tmp_path: Path) -> None:
    """--checked (metrics/params.json in dvc.yaml): the same bytes for every valid params file, left as it was when
    already there (so DVC re-runs nothing after it), and not written when the params are not valid."""
    checked, out = tmp_path / "params.json", tmp_path / "t.json"
    omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, "--checked", checked, ok=True)
    first, before = checked.read_bytes(), checked.stat().st_mtime_ns
    omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, "--checked", checked, "-S",
          "onnxruntime.threads=1", ok=True)
    assert checked.read_bytes() == first and checked.stat().st_mtime_ns == before
    checked.unlink()
    r = omzoo("toolkit", "--params", ROOT / "params.yaml", "--out", out, "--checked", checked,
              "-S", "precisions=[fp64]")
    assert "precisions: unknown ['fp64']" in error_line(r, "toolkit") and not checked.exists()


def test_dvc_refuses_a_hostile_params_name_before_a_shell_sees_it(tmp_path: Path) -> None:
    """The real dvc.yaml: `dvc repro weights@<key>` for a `models:` key holding shell syntax runs the toolkit stage
    first, which names the key and stops the run; the injected command never runs (every other stage that pastes a
    name has the same dependency: tests/test_cli.py)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp_path / "checkpoints").mkdir()
    key = "x;touch pwned;echo"
    text = (tmp_path / "params.yaml").read_text().replace("\nmodels:\n", f'\nmodels:\n  "{key}": {{pixels: x}}\n', 1)
    (tmp_path / "params.yaml").write_text(text)
    dvc(tmp_path, pipeline_env(), "init", "-q", "--no-scm")
    r = dvc(tmp_path, pipeline_env(), "repro", f"weights@{key}", ok=False)
    assert r.returncode != 0 and not list(tmp_path.rglob("pwned"))
    assert f"omzoo toolkit: error: params.yaml: models: the key '{key}' is not a plain identifier" in r.stderr
    assert not (tmp_path / "metrics" / "params.json").exists()
