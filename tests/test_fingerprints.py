"""One branch, one toolkit (results/fingerprints.py): report and compare refuse, in one line, results measured
under two toolkit fingerprints; results from before fingerprints (none carries one) are shown as they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import error_line, omzoo
from git_helpers import commit, new_repo

from omzoo.core import paths
from omzoo.core.params import load_params
from omzoo.core.provenance import FINGERPRINT
from omzoo.results.collect import read_json
from omzoo.results.fingerprints import one_fingerprint, result_infos, revision_fingerprint

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ran92_cifar10"
OLD, NEW = "0123456789abcdef", "fedcba9876543210"


def _params() -> str:
    text = (ROOT / "params.yaml").read_text()
    text = re.sub(r"(?ms)^models:\n.*?\n\n", f'models:\n  {MODEL}: {{checkpoint: "", pixels: cifar32}}\n\n', text)
    return re.sub(r"(?m)^batch_sizes: .*$", "batch_sizes: [1, 8]", text)


def _results(eval_fp: str | None, bench_fps: tuple[str | None, str | None]) -> dict[str, object]:
    """params.yaml and the info files of one model at bs 1 and 8, each with the given fingerprint (None: none)."""
    def info(fp: str | None) -> dict[str, str]:
        return {"model": MODEL, "backend": "onnxruntime", **({FINGERPRINT: fp} if fp else {})}

    files: dict[str, object] = {"params.yaml": _params(), str(paths.eval_info(MODEL)): info(eval_fp)}
    files.update({str(paths.bench_info(MODEL, bs)): info(fp) for bs, fp in zip((1, 8), bench_fps, strict=True)})
    return files


def test_one_fingerprint_is_that_fingerprint_two_are_refused_naming_a_file_of_each() -> None:
    same = {"a.json": {FINGERPRINT: OLD}, "b.json": {FINGERPRINT: OLD}}
    assert one_fingerprint(same, "here") == OLD
    assert one_fingerprint({"a.json": {"model": MODEL}}, "here") == "" == one_fingerprint({}, "here")
    with pytest.raises(ValueError, match=rf"^here: results from 2 toolkit fingerprints in one branch \(a.json: {OLD}, "
                                         rf"b.json: {NEW}\)"):
        one_fingerprint({**same, "b.json": {FINGERPRINT: NEW}}, "here")
    # results from before fingerprints next to new ones are mixed too
    with pytest.raises(ValueError, match=r"a.json: none, b.json: " + OLD):
        one_fingerprint({"a.json": {"model": MODEL}, "b.json": {FINGERPRINT: OLD}}, "here")


def test_result_infos_reads_what_params_asks_for_and_skips_what_has_not_run(tmp_path: Path) -> None:
    for name, body in _results(OLD, (OLD, None)).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body if isinstance(body, str) else json.dumps(body))
    (tmp_path / paths.bench_info(MODEL, 8)).unlink()  # bs 8 not measured yet
    (tmp_path / paths.bench_info(MODEL, 4)).write_text(json.dumps({FINGERPRINT: NEW}))  # stale: params drop bs 4
    infos = result_infos(load_params(tmp_path / "params.yaml"), lambda p: read_json(tmp_path / p))
    assert sorted(infos) == sorted([str(paths.eval_info(MODEL)), str(paths.bench_info(MODEL, 1))])
    assert one_fingerprint(infos, "t") == OLD


def test_report_refuses_a_branch_measured_under_two_toolkits(tmp_path: Path) -> None:
    """After an in-place upgrade, `dvc repro bench@M-1` alone re-measured one point: the report will not mix it."""
    for name, body in _results(OLD, (OLD, NEW)).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body if isinstance(body, str) else json.dumps(body))
    r = omzoo("report", "--root", tmp_path, "--out", tmp_path / "reports", "--params", tmp_path / "params.yaml")
    line = error_line(r, "report")
    assert "results from 2 toolkit fingerprints in one branch" in line and str(paths.bench_info(MODEL, 8)) in line
    assert r.stderr.count("\n") == 1 and not (tmp_path / "reports").exists()


def test_compare_refuses_a_revision_measured_under_two_toolkits(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(tmp_path, monkeypatch)
    commit(repo, _results(OLD, (OLD, OLD)), "results: one toolkit")
    assert revision_fingerprint("main") == OLD
    commit(repo, _results(OLD, (OLD, NEW)), "one point measured again after an upgrade")
    with pytest.raises(ValueError, match="^main: results from 2 toolkit fingerprints"):
        revision_fingerprint("main")
    r = omzoo("compare", "main~1", "main", "--out", tmp_path / "out", "--no-plots", cwd=repo)
    assert error_line(r, "compare").startswith("omzoo compare: error: main: results from 2 toolkit fingerprints")
