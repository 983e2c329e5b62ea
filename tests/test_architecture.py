"""The layout, proven: packages import only the layers below them, every dvc.yaml stage depends on the code its verb
imports, a sixth model is one arch file + one registry entry, a fourth backend is one module + one registry line,
and no stage imports another stage (stages share libraries only)."""

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

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "omzoo"
#: The layer rule of the README's Architecture section: a package imports only packages to its right.
LAYERS = ("cli", "stages", "results", "timing", "backends", "data", "core", "arch")


def _module(path: Path) -> str:
    return ".".join(("omzoo", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


MODULES = {_module(p): p for p in SRC.rglob("*.py")}


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """The nodes under `if TYPE_CHECKING:`: imports for annotations, never run."""
    blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    return {m for b in blocks for stmt in b.body for m in ast.walk(stmt)}


def _imports(path: Path, *, typing: bool = False) -> set[str]:
    """Every omzoo module a file imports, at top level or inside functions (and under TYPE_CHECKING if `typing`)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    skip = set() if typing else _type_only(tree)
    for node in ast.walk(tree):
        if node in skip:
            continue
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: a relative import; spell it out"
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("omzoo"):
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("omzoo")}
    return found & set(MODULES)


def _builds_a_model(path: Path) -> bool:
    """Whether the file calls `spec.build()`, which imports the registry entry's architecture module by name."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "build"
               for n in ast.walk(ast.parse(path.read_text())))


def _loaded_by_name(module: str) -> set[str]:
    """What a module loads through importlib: the backend registry's modules, the registry's architectures."""
    found = {m for m, _ in base._BACKENDS.values() if m in MODULES} if module == "omzoo.backends.base" else set()
    if _builds_a_model(MODULES[module]):
        arches = {spec.arch.split(":")[0] for spec in zoo.REGISTRY.values()}
        found |= {f"omzoo.arch.{a}" for a in arches if "." not in a}
    return found


def _inert(node: ast.stmt) -> bool:
    """A docstring, `from __future__`, or a constant dunder such as `__version__`: nothing a stage's result reads."""
    if isinstance(node, ast.Expr | ast.Assign) and isinstance(node.value, ast.Constant):
        return all(isinstance(t, ast.Name) and t.id.startswith("__") for t in getattr(node, "targets", []))
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _runs_code(package: str) -> bool:
    """Whether importing a package runs more than inert lines (such an __init__ changes no stage's result)."""
    return package in MODULES and not all(_inert(n) for n in ast.parse(MODULES[package].read_text()).body)


def import_closure(*modules: str) -> set[str]:
    """Every omzoo module that running `modules` can execute: their imports, theirs, and what they load by name."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        parent = m.rpartition(".")[0]
        todo += [*_imports(MODULES[m]), *_loaded_by_name(m), *([parent] if _runs_code(parent) else [])]
    return seen


def _covers(dep: Path, module: str) -> bool:
    return MODULES[module] == dep or dep in MODULES[module].parents


def missing_deps(deps: list[str], closure: set[str]) -> list[str]:
    """The modules of `closure` whose file no dep covers (a dep is a file, or a folder holding it)."""
    return sorted(m for m in closure if not any(_covers(ROOT / d, m) for d in deps))


def extra_deps(deps: list[str], closure: set[str]) -> list[str]:
    """The source deps that hold no module of `closure`: a change there would re-run the stage for nothing."""
    return [d for d in deps if not any(_covers(ROOT / d, m) for m in closure)]


def _stages() -> dict[str, tuple[set[str], list[str]]]:
    """dvc.yaml's stages as {name: (what its command runs: the CLI and the verb's module, deps)}."""
    out = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        body = stage.get("do", stage)
        verb = body["cmd"].split()[1]
        out[name] = (import_closure("omzoo.cli", cli.VERBS[verb]), [d for d in body["deps"] if d.startswith("src/")])
    return out


def _layer(module: str) -> str:
    return module.split(".")[1]


def test_packages_import_only_the_layers_below_them() -> None:
    for module, path in MODULES.items():
        if module == "omzoo" or _layer(module) not in LAYERS:
            continue
        for imported in _imports(path, typing=True):
            if imported != "omzoo" and _layer(imported) != _layer(module):
                below = LAYERS[LAYERS.index(_layer(module)) + 1:]
                assert _layer(imported) in below, f"{module} imports {imported}; {_layer(module)} may import {below}"


def test_the_package_top_shows_its_layers() -> None:
    top = {p.name for p in SRC.iterdir() if p.name != "__pycache__"}
    assert top == {"__init__.py", "py.typed", "cli.py", *LAYERS[1:]}, "a new top-level entry: put it in its layer"


def test_every_stage_depends_on_the_code_its_verb_imports() -> None:
    for name, (closure, deps) in _stages().items():
        assert not missing_deps(deps, closure), f"dvc.yaml stage {name}: its deps miss {missing_deps(deps, closure)}"
        assert not extra_deps(deps, closure), f"dvc.yaml stage {name}: it runs nothing in {extra_deps(deps, closure)}"


def test_the_deps_check_fails_when_a_stage_misses_an_imported_module() -> None:
    closure, deps = _stages()["bench"]
    assert {"omzoo.timing.measure", "omzoo.backends.onnxruntime", "omzoo.core.zoo"} <= closure
    assert not missing_deps(deps, closure)
    without = [d for d in deps if d != "src/omzoo/timing"]
    assert "omzoo.timing.measure" in missing_deps(without, closure)
    # a file-level dep covers that file only: naming one timing module leaves the others missing
    assert missing_deps([*without, "src/omzoo/timing/measure.py"], closure) == sorted(
        m for m in closure if m.startswith("omzoo.timing") and m != "omzoo.timing.measure")
    # a backend or an architecture reached only by name counts: dropping arch/ is caught
    assert "omzoo.arch.ran" in missing_deps([d for d in deps if d != "src/omzoo/arch"], closure)


#: test files about the whole rather than one module (or about a benchmark script, benchmarks/)
WHOLE = {"test_architecture.py", "test_pipeline.py", "test_remote.py", "test_toolkits.py", "test_makefile.py",
         "test_workflow.py", "test_bench_precision.py"}
#: folders whose tests carry the folder in their name (`data/shards.py` → `test_data_shards.py`)
PREFIXED = {"data": "data_", "backends": "backend_", "arch": "arch_"}


def _test_file_of(module: str) -> str:
    """The test file of a module: `core/zoo.py` → test_zoo.py, `backends/ascend/acl.py` → test_backend_acl.py."""
    parts = module.split(".")[1:]
    return f"test_{PREFIXED.get(parts[0], '')}{parts[-1]}.py"


BACKEND_MODULES = {module for module, _ in base._BACKENDS.values()}


def test_every_module_has_a_test_file_of_its_own() -> None:
    # a backend grown into a sub-package keeps its test file: its __init__ is the backend
    modules = [m for m, p in MODULES.items() if p.name != "__init__.py" or m in BACKEND_MODULES]
    have = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert not [_test_file_of(m) for m in modules if _test_file_of(m) not in have]
    assert not have - WHOLE - {_test_file_of(m) for m in modules}, "a test file named after no module"


def test_no_stage_imports_another_stage() -> None:
    verbs = set(cli.VERBS.values())
    for module in verbs:
        others = (_imports(MODULES[module], typing=True) & verbs) - {module}
        assert not others, f"{module} imports the stage(s) {sorted(others)}; move the shared code to a library"


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
    params = {"toolkit": {"version": ""}, "datasets": {"cifar32": {"data": cifar, "labels": cifar}},
              "preprocess": {"workers": 1}, "models": {"toynet": {"checkpoint": "", "pixels": "cifar32"}},
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
    cifar = yaml.safe_load(params.read_text())["datasets"]["cifar32"]["data"]
    steps = [
        ["weights", m, "--out", str(root / paths.checkpoint(m)), *p],
        ["preprocess", "--pixels", "cifar32", "--data", cifar, "--labels", cifar, "--out",
         str(root / paths.shards("cifar32")), "--quiet", *p],
        ["export", m, "--checkpoint", str(root / paths.checkpoint(m)), "--out", str(root / paths.onnx(m)), *p],
        ["simplify", str(root / paths.onnx(m)), "--out", str(root / paths.simplified(m))],
        ["compile", m, "--bs", str(bs), "--onnx", str(root / paths.simplified(m)), "--checkpoint",
         str(root / paths.checkpoint(m)), "--out", str(root / paths.compiled(m, bs)), *p],
        ["infer", "--compiled", str(root / paths.compiled(m, bs)), "--shards", str(root / paths.shards("cifar32")),
         "--out", str(root / paths.infer(m))],
        ["evaluate", m, "--infer", str(root / paths.infer(m)), "--shards", str(root / paths.shards("cifar32")),
         "--weights", str(root / paths.weights_info(m)), "--reference", str(root / paths.onnx(m)),
         "--out", str(root / paths.eval_dir(m)), "--info", str(root / paths.eval_info_dir(m))],
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
