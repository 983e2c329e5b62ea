"""The extension points, proven: a sixth model is one arch file + one registry entry, a fourth backend is one
module + one registry line, and no stage imports another stage (stages share libraries only)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from omzoo import cli
from omzoo.backends import base
from omzoo.core import paths, zoo
from omzoo.core.recipe import Recipe
from omzoo.data.sample import write_sample

SRC = Path(__file__).resolve().parents[1] / "src" / "omzoo"


def _imports(path: Path) -> set[str]:
    """Every omzoo module a file imports, at top level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("omzoo"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("omzoo")}
    return found


def test_no_stage_imports_another_stage() -> None:
    verbs = set(cli.VERBS.values())
    for module in verbs:
        path = SRC.joinpath(*module.split(".")[1:]).with_suffix(".py")
        others = (_imports(path) & verbs) - {module}
        assert not others, f"{module} imports the stage(s) {sorted(others)}; move the shared code to a library"


def test_libraries_import_no_stage() -> None:
    verbs = set(cli.VERBS.values())
    for path in SRC.rglob("*.py"):
        module = "omzoo." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        if module not in verbs and module != "omzoo.cli":
            assert not (_imports(path) & verbs), f"library {module} imports a stage"


@pytest.fixture
def toy_model():
    """The sixth model: tests/toy/toynet.py + this one registry entry, reading the CIFAR pixels."""
    spec = zoo.register(zoo.ModelSpec(
        id="toynet", arch="toy.toynet:toynet", title="ToyNet", checkpoint_file="toynet.pth", container="state_dict",
        input_size=(3, 32, 32), num_classes=10, recipe=Recipe("cifar32", 32, None, None, (0.5, 0.5, 0.5),
                                                              (0.25, 0.25, 0.25)),
        input_name="image", output_name="class", param_count=158, macs=1.0e5,
        published_accuracy={"310P": {"top1": 50.0}}, published_throughput={"310P": {2: 1000.0}},
        options={"width": 4}))
    yield spec
    del zoo.REGISTRY[spec.id]


def _params(tmp_path: Path, sample: Path, backend: str) -> Path:
    cifar = str(sample / "cifar-10-batches-py")
    params = {"toolkit": {"version": ""}, "shards": {"cifar32": {"data": cifar, "labels": cifar}},
              "preprocess": {"workers": 1}, "models": {"toynet": {"checkpoint": "", "shards": "cifar32"}},
              "weights": {"seed": 0}, "export": {"opset": 11, "input_dtype": "uint8"}, "batch_sizes": [2],
              "backend": backend, backend: {}, "infer": {"batch_size": 2},
              "bench": {"warmup_iters": 1, "warmup_s": 0.0, "min_iters": 2, "min_s": 0.0, "max_s": 5.0, "rounds": 3},
              "report": {"platforms": ["310P"]}}
    path = tmp_path / f"params-{backend}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run_pipeline(root: Path, params: Path) -> None:
    """Every stage of dvc.yaml for one model and one batch size, through the real `omzoo` verbs."""
    m, bs, p = "toynet", 2, ["--params", str(params)]
    cifar = yaml.safe_load(params.read_text())["shards"]["cifar32"]["data"]
    steps = [
        ["weights", m, "--out", str(root / paths.checkpoint(m)), *p],
        ["preprocess", "--pixels", "cifar32", "--data", cifar, "--labels", cifar, "--out",
         str(root / paths.shards("cifar32")), "--quiet", *p],
        ["export", m, "--checkpoint", str(root / paths.checkpoint(m)), "--output", str(root / paths.onnx(m)), *p],
        ["simplify", str(root / paths.onnx(m)), "--output", str(root / paths.simplified(m))],
        ["compile", m, "--bs", str(bs), "--onnx", str(root / paths.simplified(m)), "--checkpoint",
         str(root / paths.checkpoint(m)), "--out", str(root / paths.compiled(m, bs)), *p],
        ["infer", "--compiled", str(root / paths.compiled(m, bs)), "--shards", str(root / paths.shards("cifar32")),
         "--out", str(root / paths.infer(m))],
        ["evaluate", m, "--infer", str(root / paths.infer(m)), "--shards", str(root / paths.shards("cifar32")),
         "--weights", str(root / paths.weights_info(m)), "--reference", str(root / paths.onnx(m)),
         "--out", str(root / paths.eval_metrics(m)), "--info", str(root / paths.eval_info(m))],
        ["bench", "--compiled", str(root / paths.compiled(m, bs)), "--out", str(root / paths.bench_metrics(m, bs)),
         "--info", str(root / paths.bench_info(m, bs)), "--rounds", str(root / paths.bench_rounds(m, bs)), *p],
        ["report", "--root", str(root), "--out", str(root / paths.REPORTS), *p],
    ]
    for argv in steps:
        assert cli.main(argv) == 0, argv


def test_a_sixth_model_is_one_arch_file_and_one_registry_entry(toy_model, tmp_path: Path) -> None:
    write_sample(tmp_path / "sample")
    _run_pipeline(tmp_path, _params(tmp_path, tmp_path / "sample", "onnxruntime"))
    ev = json.loads((tmp_path / paths.eval_metrics("toynet")).read_text())
    assert ev["n_images"] == 64 and ev["fidelity_top1_agreement"] == 1.0 and ev["random_weights"] == 1
    assert "## ToyNet (`toynet`)" in (tmp_path / "reports" / "summary.md").read_text()


def test_a_fourth_backend_is_one_module_and_one_registry_line(toy_model, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(base._BACKENDS, "toy", ("toy.backend", "ToyBackend"))  # the one line
    write_sample(tmp_path / "sample")
    _run_pipeline(tmp_path, _params(tmp_path, tmp_path / "sample", "toy"))
    bench = json.loads((tmp_path / paths.bench_metrics("toynet", 2)).read_text())
    info = json.loads((tmp_path / paths.bench_info("toynet", 2)).read_text())
    assert bench["throughput_compute_ips"] > 0 and info["backend"] == "toy" and info["toolkit_version"] == "0.1.0"
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert "toyrt=0.1.0 toyrt_plugin=9.9" in summary and "toy device" in summary
    ev = json.loads((tmp_path / paths.eval_metrics("toynet")).read_text())
    assert ev["fidelity_max_abs_diff"] < 1e-4
