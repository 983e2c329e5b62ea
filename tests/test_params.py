"""params.yaml is validated on load: one message naming the key, for each mistake a user makes; -S KEY=VALUE is
checked the same way; each default has one home; renamed keys keep working for a release."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from omzoo import cli
from omzoo.backends.base import backend_names, get_backend
from omzoo.core.params import (
    MAX_BATCH_SIZE,
    RENAMED,
    SECTIONS,
    TOP_LEVEL,
    BenchConfig,
    ExportConfig,
    Params,
    ParamsError,
    PreprocessConfig,
    batch_size,
    batch_size_list,
    command,
    decimal,
    load_params,
    positive_int,
    revision_params,
    typed,
)

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, edit) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_the_repository_params_are_valid() -> None:
    p = load_params(ROOT / "params.yaml")
    assert set(p.models) == {"scnet50_v1d", "seresnext101_32x4d", "tresnet_m", "smlpnet_tiny", "ran92_cifar10"}
    assert p.spec("ran92_cifar10").options == {"nearest_resize": False}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p["models"].update(resnet50={"checkpoint": "", "pixels": "bilinear224"}),
     "models.resnet50: unknown model 'resnet50'"),
    (lambda p: p["models"]["tresnet_m"].pop("pixels"), "models.tresnet_m has no `pixels:`"),
    (lambda p: p["models"]["tresnet_m"].update(pixels="bicubic224"), "tresnet_m reads 'bilinear224' pixels"),
    (lambda p: p["models"]["tresnet_m"].update(pixels="nope"), "models.tresnet_m.pixels is 'nope'"),
    (lambda p: p["models"]["ran92_cifar10"].update(options={"nearest_resise": True}),
     "unknown model option\\(s\\) \\['nearest_resise'\\]"),
    (lambda p: p.update(batch_sizes=[1, 0]), "batch_sizes must be positive integers up to 4096; bad: \\[0\\]"),
    (lambda p: p.update(batch_sizes=[1, "8"]), "bad: \\['8'\\]"),
    (lambda p: p["infer"].update(batch_size=4), "infer.batch_size 4 must be one of batch_sizes \\[1, 8\\]"),
    (lambda p: p["toolkit"].update(version=1.3), "toolkit.version is the number 1.3.*quote it"),
    (lambda p: p["datasets"]["cifar32"].update(labels=""), "datasets.cifar32.labels is empty"),
])
def test_mistakes_fail_by_key(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params(_write(tmp_path, edit))


def test_sections_are_typed(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Section:
        min_iters: int = 1
        min_s: float = 1.0
        skip: bool = False

    with pytest.raises(ParamsError, match="sec.min_iters: expected an integer, got '5' \\(str\\)"):
        typed(Section, {"min_iters": "5"}, "sec")
    with pytest.raises(ParamsError, match="sec: unknown key\\(s\\) \\['min_iter'\\]"):
        typed(Section, {"min_iter": 5}, "sec")
    with pytest.raises(ParamsError, match="sec.skip: expected true or false, got 'yes'"):
        typed(Section, {"skip": "yes"}, "sec")
    assert typed(Section, {"min_s": 2, "skip": True}, "sec") == Section(1, 2, True)


def test_a_stage_reports_bad_params_in_one_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, lambda p: p["models"].update(resnet50={"pixels": "bilinear224"}))
    assert cli.main(["report", "--params", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("omzoo report: error:") and "unknown model 'resnet50'" in err and "\n" not in err


def test_params_yaml_repeats_the_defaults() -> None:
    """Each default has one home, the section dataclasses; where params.yaml sets a key it holds that value."""
    from omzoo.results.rules import CompareConfig

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    backends = {name: get_backend(name).Options for name in backend_names()}
    for name, cls in {**SECTIONS, **backends, "compare": CompareConfig}.items():
        defaults = dataclasses.asdict(cls())
        for key, value in (raw.get(name) or {}).items():
            assert value == defaults[key], f"params.yaml {name}.{key} is {value!r}, its default {defaults[key]!r}"
    assert set(SECTIONS) | set(backends) <= set(raw)


def test_modules_read_their_defaults_from_the_sections() -> None:
    from omzoo.data.shards import DEFAULT_SHARD_SIZE
    from omzoo.stages.export import export_onnx
    from omzoo.timing.contention import OTHERS_CORES

    for name in backend_names():  # a backend made without options has its Options' defaults, and only those
        backend = get_backend(name)
        assert backend.options == dataclasses.asdict(backend.Options()), name
    assert (PreprocessConfig().shard_size, BenchConfig().contention_cores) == (DEFAULT_SHARD_SIZE, OTHERS_CORES)
    signature = inspect.signature(export_onnx).parameters
    assert (signature["opset"].default, signature["input_dtype"].default) == (ExportConfig.opset, "uint8")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p["bench"].update(rounds=0), "bench.rounds: expected greater than or equal to 1, got 0"),
    (lambda p: p["preprocess"].update(shard_size=True), "preprocess.shard_size: expected an integer, got True"),
    (lambda p: p["export"].update(input_dtyp="float32"), "export: unknown key\\(s\\) \\['input_dtyp'\\]"),
    (lambda p: p["weights"].update(trusted_checkpoints="abc"), "weights.trusted_checkpoints: expected a list"),
])
def test_every_section_is_checked_on_load(tmp_path: Path, edit, message: str) -> None:
    """A mistake in any section stops every stage, not only the one that reads it."""
    with pytest.raises(ParamsError, match=message):
        load_params(_write(tmp_path, edit))


def test_a_backend_checks_its_own_section_when_made() -> None:
    """A backend's section is its Options: checked wherever that backend is made (compile, infer, bench, doctor)."""
    with pytest.raises(ParamsError, match="acl.device_id: expected an integer, got '0'"):
        get_backend("acl", {"device_id": "0"})
    with pytest.raises(ParamsError, match=r"onnxruntime: unknown key\(s\) \['thread'\]"):
        get_backend("onnxruntime", {"thread": 2})
    with pytest.raises(ParamsError, match="torch.compile: expected true or false, got 'yes'"):
        get_backend("torch", {"compile": "yes"})


def test_one_positive_integer_rule() -> None:
    assert [positive_int(v) for v in (1, "8", " 32 ")] == [1, 8, 32]
    for bad in (0, -1, True, 1.0, "0", "x", "", None):
        with pytest.raises(ValueError, match=f"--bs must be a positive integer, got {re.escape(repr(bad))}"):
            positive_int(bad, "--bs")


def test_a_batch_size_is_bounded_wherever_it_is_given(tmp_path: Path) -> None:
    """Buffers are allocated per batch: a flag, a list typed by hand and params.yaml all stop at MAX_BATCH_SIZE."""
    assert batch_size(MAX_BATCH_SIZE) == MAX_BATCH_SIZE and batch_size_list("1, 4096") == [1, MAX_BATCH_SIZE]
    with pytest.raises(ValueError, match=f"--bs must be at most {MAX_BATCH_SIZE}, got '1000000000'"):
        batch_size("1000000000", "--bs")
    with pytest.raises(ValueError, match=f"up to {MAX_BATCH_SIZE}"):
        batch_size_list("1,8,5000")
    raw = (ROOT / "params.yaml").read_text()
    for text, key in (("batch_sizes: [1, 8, 100000000]", "batch_sizes"), ("batch_sizes: [1, 8, 5000]", "batch_sizes")):
        path = tmp_path / "params.yaml"
        path.write_text(raw.replace("batch_sizes: [1, 8]", text))
        with pytest.raises(ParamsError, match=key):
            load_params(path)
    with pytest.raises(ParamsError, match="infer.batch_size"):
        _load(ROOT / "params.yaml", "infer.batch_size=100000")


def _load(path: Path, *overrides: str) -> Params:
    with command(overrides):
        return load_params(path)


def test_overrides_set_dotted_keys_with_yaml_values(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda p: None)
    p = _load(path, "export.input_dtype=float32", "preprocess.skip_bad=true", "batch_sizes=[1,8,32]",
              "models.ran92_cifar10.options.nearest_resize=true", "toolkit.version=\"1.30\"", "acl.cann_home=")
    assert p.typed(ExportConfig, "export") == ExportConfig(opset=11, input_dtype="float32")
    assert p.typed(PreprocessConfig, "preprocess").skip_bad is True and p.batch_sizes == [1, 8, 32]
    assert p.spec("ran92_cifar10").options == {"nearest_resize": True} and p.toolkit_version == "1.30"
    assert p.section("acl")["cann_home"] == "" and p.section("acl")["aipp"] is True  # the rest of the section stays
    assert load_params(path).typed(ExportConfig, "export").input_dtype == "uint8"  # the file is untouched
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert _load(empty, "bench.min_s=5").typed(BenchConfig, "bench").min_s == 5  # a section the file lacks


@pytest.mark.parametrize(("override", "message"), [
    ("export.input_dtyp=float32", "with -S export.input_dtyp=float32: export: unknown key\\(s\\) \\['input_dtyp'\\]"),
    ("bench.min_iters='5'", "with -S bench.min_iters='5': bench.min_iters: expected an integer, got '5'"),
    ("batch_sizes=[1,0]",
     "with -S batch_sizes=\\[1,0\\]: batch_sizes must be positive integers up to 4096; bad: \\[0\\]"),
    ("toolkit.version=1.30", "toolkit.version is the number 1.3.*quote it"),
    ("models.resnet50.pixels=bilinear224", "models.resnet50: unknown model 'resnet50'"),
    ("export.opset", "-S 'export.opset': expected KEY=VALUE"),
    ("=3", "-S '=3': expected KEY=VALUE"),
    ("export..opset=3", "expected KEY=VALUE"),
    ("export.opset=[1,", "-S export.opset=\\[1,: the value is not valid YAML"),
    ("batch_sizes.x=1", "-S batch_sizes.x=1: `batch_sizes` is list, not a mapping of keys"),
])
def test_a_bad_override_fails_like_the_file_and_names_the_key(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        _load(_write(tmp_path, lambda p: None), override)


def test_a_bad_file_is_named_before_the_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda p: p["bench"].update(min_iter=5))
    with pytest.raises(ParamsError, match=f"^{re.escape(str(path))}: bench: unknown key"):
        _load(path, "bench.min_iters=5")


def test_a_command_reads_each_params_file_once(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda p: None)
    with command(["bench.rounds=3"]):
        first = load_params(path)
        path.write_text("batch_sizes: [oops")  # not read again within the command
        assert load_params(path) is first and load_params(tmp_path / "." / "params.yaml") is first
    assert first.typed(BenchConfig, "bench").rounds == 3
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_other_revisions_get_the_overrides_unvalidated(tmp_path: Path) -> None:
    text = "models: {resnet9000: {}}\ncompare: {min_effect: 0.03}\n"
    with command(["compare.min_effect=0.1"]):
        p = revision_params(text, Path("main:params.yaml"))
    assert p.section("compare") == {"min_effect": 0.1} and list(p.models) == ["resnet9000"]
    assert p.where == "main:params.yaml with -S compare.min_effect=0.1"


@pytest.fixture
def renamed(monkeypatch) -> None:
    """A fake rename of a section, beside the real ones (`shards:` is now `datasets:`, a model's `shards` its
    `pixels`)."""
    monkeypatch.setitem(RENAMED, "inference", "infer")


def test_an_old_key_works_with_a_warning(tmp_path: Path, renamed, capsys) -> None:
    def old_names(p: dict) -> None:
        p["inference"] = p.pop("infer")
        p["models"]["tresnet_m"]["shards"] = p["models"]["tresnet_m"].pop("pixels")

    path = _write(tmp_path, old_names)
    p = _load(path, "inference.batch_size=1")
    assert p.section("infer") == {"batch_size": 1} and "inference" not in p.raw
    assert p.models["tresnet_m"] == {"checkpoint": "", "pixels": "bilinear224"}
    err = capsys.readouterr().err.splitlines()
    assert err == [f"omzoo: warning: {path}: `models.tresnet_m.shards` is now `models.tresnet_m.pixels`; "
                   "rename it (omzoo reads the old name for one more release, dvc.yaml needs the new one now)",
                   f"omzoo: warning: {path}: `inference` is now `infer`; rename it (omzoo reads the old name for one "
                   "more release, dvc.yaml needs the new one now)",
                   "omzoo: warning: -S inference.batch_size=1: `inference.batch_size` is now `infer.batch_size`; "
                   "rename it (omzoo reads the old name for one more release, dvc.yaml needs the new one now)"]


def test_an_old_and_a_new_key_together_are_an_error(tmp_path: Path, renamed) -> None:
    path = _write(tmp_path, lambda p: p.update(inference={"batch_size": 8}))
    with pytest.raises(ParamsError, match="both `inference` and `infer`; `inference` is the old name, keep only "):
        load_params(path)


def test_the_old_shards_names_still_load(tmp_path: Path, capsys) -> None:
    """This release's renames, as a user's unrenamed params.yaml meets them: `shards:` is `datasets:`, a model's
    `shards:` its `pixels:`; both still load, each with one warning that says what dvc.yaml needs."""
    def old_names(p: dict) -> None:
        p["shards"] = p.pop("datasets")
        for entry in p["models"].values():
            entry["shards"] = entry.pop("pixels")

    path = _write(tmp_path, old_names)
    p = load_params(path)
    assert "shards" not in p.raw and set(p.section("datasets")) == {"bilinear224", "bicubic224", "cifar32"}
    assert p.models["ran92_cifar10"]["pixels"] == "cifar32" and "shards" not in p.models["ran92_cifar10"]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"omzoo: warning: {path}: `shards` is now `datasets`; rename it (omzoo reads the old name for "
                      "one more release, dvc.yaml needs the new one now)")
    assert len(err) == 1 + len(p.models) and all("`models." in line and ".shards` is now `models." in line
                                                 for line in err[1:])


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("bench:\n  rounds: 3\n", "line .*: found duplicate key \"bench\""),
    ("bnech:\n  rounds: 3\n", "unknown section\\(s\\) \\['bnech'\\]"),
    ("batch_size: 8\n", "unknown section\\(s\\) \\['batch_size'\\]"),
    ("bénch:\n  rounds: 3\n", "unknown section\\(s\\) \\['bénch'\\]"),
])
def test_a_duplicate_or_unknown_section_fails_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ParamsError, match=message) as e:
        load_params(_text(tmp_path, text))
    assert "\n" not in str(e.value) and str(tmp_path / "params.yaml") in str(e.value)


@pytest.mark.parametrize(("section", "key"), [
    ("models", "ran92_cifar10;touch pwned;echo"), ("models", "Ran92"), ("models", "a b"), ("models", 7),
    ("models", "x" * 500), ("datasets", "cifar32$(touch pwned)"), ("datasets", "cifar-32"),
])
def test_a_key_dvc_pastes_into_commands_is_an_identifier(tmp_path: Path, section: str, key: object) -> None:
    """dvc.yaml pastes `models:` and `datasets:` keys into shell commands: only [a-z0-9_] passes, in one short line."""
    entry = {"checkpoint": "", "pixels": "cifar32"} if section == "models" else {"data": "d", "labels": "d"}
    with pytest.raises(ParamsError, match=f"{section}: the key .* is not a plain identifier") as e:
        load_params(_write(tmp_path, lambda p: p[section].update({key: entry})))
    assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_a_model_listed_twice_fails(tmp_path: Path) -> None:
    text = (ROOT / "params.yaml").read_text().replace(
        "  tresnet_m: {", "  scnet50_v1d: {checkpoint: x.pth, pixels: bilinear224}\n  tresnet_m: {")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match='duplicate key "scnet50_v1d"'):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p["report"].update(platforms="310P"), "report.platforms: expected a list, got '310P'"),
    (lambda p: p["report"].update(platforms=[310]), "report.platforms: expected a string, got \\[310\\]"),
    (lambda p: p["bench"].update(rounds=0), "bench.rounds: expected greater than or equal to 1, got 0"),
    (lambda p: p["bench"].update(level=1.5), "bench.level: expected less than 1, got 1.5"),
    (lambda p: p["bench"].update(seed=-1), "bench.seed: expected greater than or equal to 0"),
    (lambda p: p["bench"].update(min_s=float("nan")), "bench"),
    (lambda p: p["export"].update(input_dtype="int8"), "export.input_dtype: expected 'uint8' or 'float32'"),
    (lambda p: p["infer"].update(batch_size="8"), "infer.batch_size: expected an integer, got '8'"),
    (lambda p: p["models"]["tresnet_m"].update(checkpoint=7), "models.tresnet_m.checkpoint: expected a string"),
])
def test_every_key_has_a_type(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        load_params(_write(tmp_path, edit))


@pytest.mark.parametrize(("options", "message"), [
    ({"providers": "TensorRT"}, "onnxruntime.providers: expected 'auto' or a list, got 'TensorRT'"),
    ({"threads": -3}, "onnxruntime.threads: expected greater than or equal to 0, got -3"),
    ({"level": "fastest"}, "onnxruntime.level: expected 'disable', 'basic', 'extended' or 'all', got 'fastest'"),
])
def test_backend_sections_have_a_type_per_key(options: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        get_backend("onnxruntime", options)


def test_top_level_lists_every_section_read() -> None:
    assert set(backend_names()) | set(SECTIONS) | {"compare", "datasets", "models", "batch_sizes"} <= TOP_LEVEL
    assert set(yaml.safe_load((ROOT / "params.yaml").read_text())) <= TOP_LEVEL


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_params_path_that_is_not_a_file_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "params.yaml"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(ParamsError, match=f"{path}: is a (FIFO|folder)"):
        load_params(path)


def test_decimal_reads_ascii_digits_only() -> None:
    assert [decimal(t) for t in ("10", " 7 ", "-2", "1_0", "٣", "1e3", "")] == [10, 7, -2, None, None, None, None]
    with pytest.raises(ValueError, match="positive integer"):
        positive_int("٣")


def _bomb(levels: int) -> str:
    """A YAML list of aliases of aliases: `levels` lines expand to 10**levels strings."""
    parts = ['&a0 ["x","x","x","x","x","x","x","x","x","x"]']
    parts += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


@pytest.mark.parametrize(("old", "new", "message"), [
    ('platforms: [310P, "310", T4]', f"platforms: {_bomb(9)}", "report.platforms\\[0\\] .*uses an anchor"),
    ("\ncompare:\n", "\ncompare: &c\n", "compare .*uses an anchor"),
    ("\nreport:\n  platforms", "\nreport:\n  <<: {}\n  platforms", "report.<< .*uses a merge key"),
])
def test_yaml_anchors_aliases_and_merge_keys_are_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    """A few KB of aliases of aliases expand to gigabytes: refused on the composed graph, before anything expands."""
    text = (ROOT / "params.yaml").read_text()
    assert old in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ParamsError, match=message) as e:
        load_params(path)
    assert len(str(e.value)) < 300 and "\n" not in str(e.value)
    with pytest.raises(ParamsError, match="uses an alias|uses an anchor"):
        _load(ROOT / "params.yaml", "report.platforms=[&a x, *a]")


def test_a_huge_value_is_quoted_short(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda p: p.update(precisions=["fp64"] * 100_000))
    with pytest.raises(ParamsError, match="precisions: unknown") as e:
        load_params(path)
    assert len(str(e.value)) < 400


@pytest.mark.parametrize("value", ["false", "true", 1, None])
def test_model_options_are_typed_as_their_defaults(tmp_path: Path, value) -> None:
    """nearest_resize: "false" is a non-empty string, which Python reads as true: refused naming the option."""
    path = _write(tmp_path, lambda p: p["models"]["ran92_cifar10"].update(options={"nearest_resize": value}))
    with pytest.raises(ParamsError, match="models.ran92_cifar10.options.nearest_resize: expected true or false"):
        load_params(path)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p["infer"].update(batch_size=True), "infer.batch_size: expected an integer, got True"),
    (lambda p: p["infer"].update(batch_size=1.0), "infer.batch_size: expected an integer, got 1.0"),
    (lambda p: p["infer"].update(batch_sise=8), "infer: unknown key\\(s\\) \\['batch_sise'\\]"),
    (lambda p: p["compare"].update(min_efect=0.03), "compare: unknown key\\(s\\) \\['min_efect'\\]"),
    (lambda p: p["compare"].update(min_rounds=True), "compare.min_rounds: expected an integer"),
    (lambda p: p["torch"].update(devise="auto"), "torch: unknown key\\(s\\) \\['devise'\\]"),
    (lambda p: p["acl"].update(device_id="0"), "acl.device_id: expected an integer"),
    (lambda p: p["acl"].update(precision_mode="force_fp16"), "acl.precision_mode has moved"),
])
def test_infer_compare_and_every_backend_section_are_checked_on_load(tmp_path: Path, edit, message: str) -> None:
    """Not only where a comparison or that backend reads them: the backend configured is onnxruntime here."""
    with pytest.raises(ParamsError, match=message):
        load_params(_write(tmp_path, edit))
