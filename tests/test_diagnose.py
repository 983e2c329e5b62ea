"""`omzoo diagnose`: fp32 against itself diverges nowhere; an int8 artefact calibrated on constant images diverges at
a named node (and says whether it propagates); a normal calibration stays close; an unknown image is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from quant_helpers import tiny_convnet

from omzoo import cli
from omzoo.backends.base import CompileSource
from omzoo.backends.onnxruntime import OrtBackend
from omzoo.core import zoo
from omzoo.core.io import write_json_atomic
from omzoo.data.preprocess import preprocess
from omzoo.data.sample import write_sample
from omzoo.data.shards import ShardSet

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
