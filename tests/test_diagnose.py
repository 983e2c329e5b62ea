"""`omzoo diagnose`: fp32 against itself diverges nowhere; an int8 artefact calibrated on constant images diverges at
a named node (and says whether it propagates); a normal calibration stays close; an unknown image is one line.
--against REV: REV's artefact, got as abtest gets a side's, against the same commit diverges nowhere, against a branch
whose artefact was calibrated otherwise at a named node; what cannot serve is one line naming REV."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import error_line, omzoo
from dvc_helpers import dvc, pipeline_env, sh, tiny_checkout
from git_helpers import commit, git, write
from quant_helpers import tiny_convnet

from omzoo import cli
from omzoo.backends.base import CompileSource
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.backends.onnxruntime.debug import SAME_NAMES
from omzoo.core import paths, zoo
from omzoo.core.io import write_json_atomic
from omzoo.data.preprocess import preprocess
from omzoo.data.sample import write_sample
from omzoo.data.shards import ShardSet
from omzoo.stages.diagnose import default_out

SPEC = zoo.get("ran92_cifar10")
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
BS = 4


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample's 64 CIFAR images as a shard set."""
    root = tmp_path_factory.mktemp("diagnose")
    write_sample(root / "sample")
    preprocess(SPEC.recipe, root / "sample" / "cifar-10-batches-py", None, root / "shards", progress=False)
    return root / "shards"


def artefact(root: Path, name: str, precision: str = "fp32", calibration: np.ndarray | None = None,
             **settings) -> Path:
    """The tiny graph compiled at BS with the compile stage's meta.json."""
    backend = OrtBackend({"threads": 1})
    src = CompileSource(spec=SPEC, onnx=tiny_convnet(root / "m.onnx", SPEC, seed=3), precision=precision,
                        calibration=calibration, quantization=settings)
    art = backend.compile(src, BS, root / name)
    write_json_atomic(art.parent / "meta.json", {
        "model": SPEC.id, "model_options": SPEC.options, "backend": "onnxruntime", "options": {"threads": 1},
        "batch_size": BS, "artefact": art.name, "precision": precision,
        "precision_record": backend.precision_record()})
    return art.parent


@pytest.fixture(scope="module")
def arts(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arts")
    calibration = ShardSet(shards).read(8, 40)
    constant = np.full((8, *SPEC.input_size), 3, np.uint8)  # every pixel 3: the ranges of a black image
    return {"fp32": artefact(root, "fp32"), "int8": artefact(root, "int8", "int8", calibration),
            "constant": artefact(root, "constant", "int8", constant)}


def diagnose(arts: dict[str, Path], shards: Path, out: Path, other: str, *extra: str) -> int:
    return cli.main(["diagnose", SPEC.id, "--precision", "fp32" if other == "fp32" else "int8", "--reference",
                     str(arts["fp32"]), "--compiled", str(arts[other]), "--shards", str(shards), "--out", str(out),
                     "--params", str(PARAMS), *extra])


def test_fp32_against_itself_diverges_nowhere(arts: dict[str, Path], shards: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert diagnose(arts, shards, tmp_path / "out", "fp32") == 0
    result = json.loads((tmp_path / "out" / "diagnose.json").read_text())
    assert result["summary"]["diverged"] is False and result["summary"]["first"] is None
    assert len(result["images"]) == 8 and result["tensors"]["compared"] >= 6
    assert all(r["cosine"] > 0.99999 and r["red"] < 1e-6 for r in result["nodes"])
    assert result["output"]["top1_agreement"] == 1.0
    assert "No divergence" in (tmp_path / "out" / "diagnose.md").read_text()
    assert "no divergence in" in capsys.readouterr().out


def test_constant_calibration_diverges_at_a_named_node(arts: dict[str, Path], shards: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert diagnose(arts, shards, tmp_path / "out", "constant") == 0
    result = json.loads((tmp_path / "out" / "diagnose.json").read_text())
    summary = result["summary"]
    assert summary["diverged"] and summary["effect"] in ("propagates", "local")
    first = summary["first"]
    names = [r["node"] for r in result["nodes"]]
    assert first["node"] in names and (first["cosine"] <= 0.99 or first["red"] >= 0.05)
    assert all(not (r["cosine"] <= 0.99 or r["red"] >= 0.05) for r in result["nodes"][:names.index(first["node"])])
    assert result["compared_graph"].endswith("quantized.onnx") and any(r["qdq"] for r in result["nodes"])
    assert result["precision_record"]["calibration_images"] == 8
    out = capsys.readouterr().out
    assert f"first divergence at {first['node']}" in out and summary["effect"] in out
    assert f"First divergence: `{first['node']}`" in (tmp_path / "out" / "diagnose.md").read_text()


def test_a_real_calibration_stays_closer(arts: dict[str, Path], shards: Path, tmp_path: Path) -> None:
    assert diagnose(arts, shards, tmp_path / "good", "int8") == 0
    assert diagnose(arts, shards, tmp_path / "bad", "constant") == 0
    good, bad = (json.loads((tmp_path / d / "diagnose.json").read_text()) for d in ("good", "bad"))
    assert good["output"]["red"] < bad["output"]["red"]
    assert good["output"]["cosine"] > 0.9
    assert all(0.0 <= r["red"] < 1.0 and r["cosine"] > 0.9 for r in good["nodes"])
    qdq = [r for r in good["nodes"] if r["qdq"]]
    assert qdq and all(r["qdq_sqnr_db"] is not None for r in qdq)
    assert all(r["qdq_sqnr_db"] is None for r in good["nodes"] if not r["qdq"])
    assert next(r for r in qdq if r["tensor"] == "/Div_output_0")["qdq_sqnr_db"] > 100  # k/255: on the int8 grid
    assert [r["tensor"] for r in good["nodes"]] == [r["tensor"] for r in bad["nodes"]]  # the fp32 graph's order


def test_images_by_name_and_an_unknown_one(arts: dict[str, Path], shards: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    names = ShardSet(shards).names
    assert diagnose(arts, shards, tmp_path / "out", "int8", "--images", names[5], names[2]) == 0
    assert json.loads((tmp_path / "out" / "diagnose.json").read_text())["images"] == [names[5], names[2]]
    capsys.readouterr()
    assert diagnose(arts, shards, tmp_path / "out2", "int8", "--images", "no-such.png") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no image named 'no-such.png'" in err
    assert not (tmp_path / "out2").exists()


def test_other_backends_are_refused_in_one_line(arts: dict[str, Path], shards: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diagnose", SPEC.id, "--precision", "int8", "--params", str(PARAMS), "-S", "backend=acl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the onnxruntime backend's artefacts" in err


# --against REV -------------------------------------------------------------------------------------------------------

#: the compile stage by the real one's name and layout; its outputs are recorded with `dvc commit`, never made by its
#: command, so a worktree that ran it (rather than check them out of the shared DVC cache) fails
STAND_IN = """stages:
  compile:
    matrix:
      model: ${models}
      bs: ${batch_sizes}
      precision: ${precisions}
    cmd: echo "a stand-in, never run" && exit 1
    params: [precision]
    outs:
      - models/compiled/${item.model}/${key}
"""
INT8 = paths.compiled(SPEC.id, BS, "int8")


def recorded(repo: Path, art: Path, branch: str, files: dict[str, str] | None = None, **meta: str) -> None:
    """`art` as the int8 artefact (its meta.json's `meta` changed) beside `files`, `dvc commit`ted and committed on
    `branch` (made from main unless it is main)."""
    git(repo, "checkout", "-q", *(["main"] if branch == "main" else ["-b", branch, "main"]))
    write(repo, files or {})
    shutil.rmtree(repo / INT8, ignore_errors=True)
    shutil.copytree(art, repo / INT8)
    if meta:
        write_json_atomic(repo / INT8 / "meta.json", {**json.loads((repo / INT8 / "meta.json").read_text()), **meta})
    dvc(repo, pipeline_env(), "commit", "-q", "-f", f"compile@{INT8.name}")
    commit(repo, {}, f"{branch}: its int8 artefact")


@pytest.fixture(scope="module")
def history(arts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git+DVC checkout of RAN-92 at BS (STAND_IN): main holds the int8 artefact calibrated on the shards;
    calib/constant the one calibrated on constant images; on-torch and fp32-only params that cannot serve, and
    mislabelled an artefact of another model. main checked out, its artefact in place."""
    repo = tmp_path_factory.mktemp("history") / "repo"
    repo.mkdir()
    env = pipeline_env()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, env, "init", "-q")
    params = {"datasets": {"cifar32": {"data": "data/cifar", "labels": "data/cifar"}},
              "models": {SPEC.id: {"checkpoint": "", "pixels": "cifar32"}}, "batch_sizes": [BS],
              "precisions": ["fp32", "int8"], "precision": {"calibration_images": 32}, "infer": {"batch_size": BS}}
    commit(repo, {"dvc.yaml": STAND_IN, "params.yaml": yaml.safe_dump(params), ".gitignore": ".omzoo/\n/reports/\n"})
    recorded(repo, arts["int8"], "main")
    constant = {**params, "precision": {"calibration_images": 8}}  # the artefact's 8 constant images
    recorded(repo, arts["constant"], "calib/constant", {"params.yaml": yaml.safe_dump(constant)})
    recorded(repo, arts["int8"], "mislabelled", model="scnet50_v1d")
    for branch, changed in (("on-torch", {"backend": "torch"}), ("fp32-only", {"precisions": ["fp32"]})):
        git(repo, "checkout", "-q", "-b", branch, "main")
        commit(repo, {"params.yaml": yaml.safe_dump({**params, **changed})}, branch)
    git(repo, "checkout", "-q", "main")
    dvc(repo, env, "checkout", "-q", f"compile@{INT8.name}")
    return repo


def against(repo: Path, shards: Path, rev: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(repo)
    return cli.main(["diagnose", SPEC.id, "--precision", "int8", "--against", rev, "--shards", str(shards)])


def test_against_the_same_commit_diverges_nowhere(history: Path, shards: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert against(history, shards, "HEAD", monkeypatch) == 0
    out = history / "reports" / "diagnose" / f"{SPEC.id}-int8-vs-HEAD"
    result = json.loads((out / "diagnose.json").read_text())
    head = git(history, "rev-parse", "HEAD")
    assert result["against"] == {"revision": "HEAD", "commit": head} and result["reference_precision"] == "int8"
    assert Path(result["reference"]) == history / ".omzoo" / "abtest" / "worktrees" / head[:12] / INT8
    assert result["reference_graph"].endswith("quantized.onnx") and result["matching"] == SAME_NAMES
    assert result["summary"]["diverged"] is False and result["tensors"]["compared"] >= 6
    assert all(r["cosine"] > 0.99999 and r["red"] < 1e-6 for r in result["nodes"])
    assert result["output"]["top1_agreement"] == 1.0
    assert (out / "diagnose.md").read_text().startswith(f"# diagnose {SPEC.id} int8 against HEAD ({head[:7]})\n")
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{SPEC.id} int8 against HEAD ({head[:7]}): no divergence in")
    assert "dvc checkout" in (out / "logs" / "setup.log").read_text()


def test_against_a_branch_calibrated_otherwise_diverges_at_a_named_node(
        history: Path, shards: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert against(history, shards, "calib/constant", monkeypatch) == 0
    out = history / "reports" / "diagnose" / f"{SPEC.id}-int8-vs-calib_constant"
    result = json.loads((out / "diagnose.json").read_text())
    branch = git(history, "rev-parse", "calib/constant")
    assert result["against"] == {"revision": "calib/constant", "commit": branch}
    assert result["reference_precision_record"]["calibration_images"] == 8  # the constant images
    assert result["precision_record"]["calibration_images"] == 32
    summary = result["summary"]
    first = summary["first"]
    assert summary["diverged"] and first["node"] in [r["node"] for r in result["nodes"]]
    assert first["cosine"] <= 0.99 or first["red"] >= 0.05
    assert (out / "diagnose.md").read_text().startswith(f"# diagnose {SPEC.id} int8 against calib/constant "
                                                       f"({branch[:7]})\n")
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{SPEC.id} int8 against calib/constant ({branch[:7]}): first divergence at "
                           f"{first['node']}")


@pytest.mark.parametrize(("rev", "says"), [
    ("no-such", ["unknown revision 'no-such'"]),
    ("../x", ["unknown revision '../x'"]),
    ("workspace", ["--against workspace: the diagnosed artefact is already the workspace's"]),
    ("on-torch", ["--against on-torch (", "its backend is torch"]),
    ("fp32-only", ["--against fp32-only (", f"compiles no {SPEC.id} at batch size {BS} in int8"]),
    ("mislabelled", [f"the mislabelled int8 artefact is of scnet50_v1d, not {SPEC.id}"]),
])
def test_a_revision_that_cannot_serve_is_one_line_naming_it(
        history: Path, shards: Path, rev: str, says: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert against(history, shards, rev, monkeypatch) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("omzoo diagnose: error: ") and all(s in err for s in says)
    if rev in ("no-such", "../x"):  # a bad revision fails before any folder is made
        assert not list((history / "reports" / "diagnose").glob("*-vs-*no-such")) and not (history / "x").exists()
        assert not (history.parent / "x").exists() and not (history / "reports" / "x").exists()


def test_against_and_reference_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["diagnose", SPEC.id, "--precision", "int8", "--reference", "r", "--against", "main"])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_the_default_folder_stays_inside_reports_diagnose() -> None:
    folder = paths.REPORTS / "diagnose"
    assert default_out("m", "int8", None) == folder / "m-int8"
    assert default_out("m", "int8", "main") == folder / "m-int8-vs-main"
    for rev in ("../x", "..", "a/../../b", "feature\\x", "/abs", "HEAD~1 x"):
        out = default_out("m", "int8", rev)
        assert out.parent == folder and out.name.startswith("m-int8-vs-") and "/" not in out.name
        assert (Path("/root") / out).resolve().parent == Path("/root") / folder


@pytest.mark.slow
@pytest.mark.pipeline
def test_against_a_branch_with_fewer_calibration_images_on_the_real_pipeline(tmp_path: Path) -> None:
    """The real dvc.yaml on this checkout shrunk to RAN-92 with int8 calibrated on 8 images, its results committed on
    main; a branch that calibrates on 2 builds its own artefact in its worktree (calibrate and compile run there), and
    diagnose names where this checkout's artefact departs from it; against HEAD nothing departs (about two minutes)."""
    env = pipeline_env()
    tiny_checkout(tmp_path, env, SPEC.id, onnxruntime={"threads": 2}, precision={"calibration_images": 8})
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "precisions": ["fp32", "int8"]}, sort_keys=False))
    dvc(tmp_path, env, "repro", "--no-run-cache", f"compile@{SPEC.id}-4-int8")
    commit(tmp_path, {}, "results: int8 on 8 calibration images")
    sh(tmp_path, env, "git", "checkout", "-qb", "calib-2")
    (tmp_path / "params.yaml").write_text((tmp_path / "params.yaml").read_text().replace(
        "calibration_images: 8", "calibration_images: 2"))
    commit(tmp_path, {}, "2 calibration images")
    sh(tmp_path, env, "git", "checkout", "-q", "main")

    same = omzoo("diagnose", SPEC.id, "--precision", "int8", "--against", "HEAD", cwd=tmp_path, env=env, ok=True)
    assert "against HEAD (" in same.stdout and ": no divergence in" in same.stdout
    r = omzoo("diagnose", SPEC.id, "--precision", "int8", "--against", "calib-2", cwd=tmp_path, env=env, ok=True)
    out = tmp_path / "reports" / "diagnose" / f"{SPEC.id}-int8-vs-calib-2"
    result = json.loads((out / "diagnose.json").read_text())
    assert result["summary"]["diverged"] and result["reference_precision_record"]["calibration_images"] == 2
    assert f"first divergence at {result['summary']['first']['node']}" in r.stdout.splitlines()[-1]
    log = (out / "logs" / "setup.log").read_text()
    assert f"Running stage 'compile@{SPEC.id}-4-int8'" in log and f"Running stage 'weights@{SPEC.id}'" not in log
    r = omzoo("diagnose", SPEC.id, "--precision", "int8", "--against", "no-such", cwd=tmp_path, env=env)
    assert "unknown revision 'no-such'" in error_line(r, "diagnose")
