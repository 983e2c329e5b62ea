"""Ascend backend without an NPU: the real atc subprocess flow against a fake CANN tree (two toolkits side by side,
tests/fake_cann.py), the aclruntime glue against a fake module that follows aclruntime's API, and the child
process aclruntime runs in. Nothing here depends on what this machine has installed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import types
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
from fake_cann import (
    NPU_SMI_310P,
    NPU_SMI_910B,
    VENV_PACKAGES,
    VERSIONS,
    cann_tree,
    make_exe,
    other_roots,
    records,
    set_python_packages,
    source_in_shell,
    toolkit,
    use_host,
)
from onnx import TensorProto, helper

from omzoo import cli
from omzoo.backends.artefact import ToolkitMismatch, compile_artefact, load_compiled
from omzoo.backends.ascend import acl, cann
from omzoo.backends.ascend.acl import AclBackend
from omzoo.backends.ascend.amct import AmctError
from omzoo.backends.ascend.atc import AtcError
from omzoo.backends.base import DESCRIBE_KEYS, CompileSource, DeviceProcess, get_backend
from omzoo.core import paths, zoo
from omzoo.core.errors import BackendUnavailable, RestartInEnvironment
from omzoo.core.params import ParamsError, PrecisionConfig
from omzoo.core.recipe import normalize

pytestmark = pytest.mark.usefixtures("venv_bin")  # conftest.py: no real Ascend install is visible

MODELS = ["scnet50_v1d", "seresnext101_32x4d", "tresnet_m", "smlpnet_tiny", "ran92_cifar10"]
#: the first channel's AIPP scale by the recipe's std (the two the registry's models use)
VAR_RECI_0 = {(0.229, 0.224, 0.225): "0.0171247538316637", None: "0.00392156862745098"}


# --------------------------------------------------------------------------- helpers


def spec_for(om: Path) -> zoo.ModelSpec:
    """The registry entry of an artefact named the way compile() names it, by the point's key: `<model>-<N>.om`."""
    point = paths.parse_key(Path(om).stem)
    assert point is not None, om
    return zoo.get(point[0])


def compile_model(model_id: str, bs: int, out: Path, params: dict, onnx: Path | None, checkpoint: Path | None):
    """What the compile stage does with these params (omzoo.backends.artefact.compile_artefact)."""
    name = params["backend"]
    return compile_artefact(zoo.get(model_id), bs, out, name, params.get(name, {}),
                            params.get("toolkit", {}).get("version", ""), onnx, checkpoint)


@pytest.fixture
def ascend(tmp_path: Path) -> Path:
    """The fake Ascend root: toolkits 8.0.RC3 and 8.1.RC1, `latest` → 8.1.RC1."""
    return cann_tree(tmp_path / "host")


@pytest.fixture
def home(ascend: Path) -> Path:
    """The branch's CANN root (acl.cann_home)."""
    return ascend / "ascend-toolkit" / VERSIONS[0]


@pytest.fixture
def backend(home: Path) -> Callable[..., AclBackend]:
    def make(**options: Any) -> AclBackend:
        return AclBackend({"soc_version": "Ascend310P3", "cann_home": str(home), **options})

    return make


@pytest.fixture
def fake_atc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Every toolkit's `atc` records its calls here (one JSON line each, with the version that ran)."""
    record = tmp_path / "atc_calls.jsonl"
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    return record


def calls(record: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def tiny_onnx(path: Path, spec: zoo.ModelSpec, elem: int = TensorProto.FLOAT, name: str | None = None) -> Path:
    """An Identity graph with the registry's input name and shape: all atc's command line needs."""
    c, h, w = spec.input_size
    name = name or spec.input_name
    inp = helper.make_tensor_value_info(name, elem, ["-1", c, h, w])
    out = helper.make_tensor_value_info(spec.output_name, elem, ["-1", c, h, w])
    graph = helper.make_graph([helper.make_node("Identity", [name], [spec.output_name])], "g", [inp], [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), str(path))
    return path


def args_of(argv: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv[1:])


# --------------------------------------------------------------------------- availability and options


def test_registered_and_options() -> None:
    b = get_backend("acl", {"soc_version": "Ascend310P3"})
    assert isinstance(b, AclBackend) and b.name == "acl"
    assert "precision_mode" not in b.options and b.options["aipp"] is True
    assert b.options["cann_home"] == "" and b.options["python"] == ""
    assert b.PRECISIONS == ("fp32", "fp16", "mixed", "int8") and b.precision == "fp32"
    with pytest.raises(ValueError, match=r"acl: unknown key\(s\) \['soc'\]"):
        AclBackend({"soc": "x"})
    with pytest.raises(ValueError, match="log must be"):
        AclBackend({"log": "loud"})


def test_missing_atc_is_backend_unavailable(tmp_path: Path, home: Path, backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("scnet50_v1d")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    with pytest.raises(BackendUnavailable) as err:
        backend(atc=str(tmp_path / "nope" / "atc")).compile(src, 1, tmp_path / "out")
    for needle in ("atc", "set_env.sh", "aclruntime", "ais_bench"):
        assert needle in str(err.value)
    (home / "bin" / "atc").unlink()  # a toolkit without atc (a runtime-only install)
    with pytest.raises(BackendUnavailable, match="set_env.sh"):
        backend().compile(src, 1, tmp_path / "out")


def test_missing_aclruntime_is_backend_unavailable(tmp_path: Path, home: Path, backend: Callable[..., AclBackend],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aclruntime", None)  # import fails, whatever is installed
    monkeypatch.setenv(cann.CANN_HOME_VAR, os.path.realpath(home))
    om = tmp_path / "scnet50_v1d-1.om"
    om.write_bytes(b"om")
    with pytest.raises(BackendUnavailable) as err:
        backend().load(om, 1, spec_for(om))
    for needle in ("aclruntime", "ais_bench", "set_env.sh"):
        assert needle in str(err.value)


def test_toolkit_version_mismatch_fails_compile_before_atc(tmp_path: Path, home: Path, fake_atc: Path) -> None:
    spec = zoo.get("scnet50_v1d")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", spec)
    params = {"backend": "acl", "acl": {"soc_version": "Ascend310P3", "cann_home": str(home)},
              "toolkit": {"version": "8.1.RC1"}}
    with pytest.raises(ToolkitMismatch, match=r"'8\.1\.RC1' but this machine has acl 8\.0\.RC3"):
        compile_model(spec.id, 1, tmp_path / "out", params, onnx_path, None)
    assert not fake_atc.exists()  # atc never ran
    params["toolkit"]["version"] = "8.0.RC3"
    meta = compile_model(spec.id, 1, tmp_path / "out", params, onnx_path, None)
    assert meta["toolkit_version"] == "8.0.RC3" and (tmp_path / "out" / meta["artefact"]).is_file()


def test_undetectable_cann_is_backend_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable, match="set_env.sh"):
        AclBackend({"soc_version": "Ascend310P3"}).toolkit_version()  # the isolated host has no CANN at all
    with pytest.raises(BackendUnavailable, match=r"acl.cann_home '.*missing' is not a directory"):
        AclBackend({"cann_home": str(tmp_path / "missing")}).toolkit_version()
    with pytest.raises(BackendUnavailable, match="no CANN version file"):
        AclBackend({"cann_home": str(tmp_path)}).toolkit_version()


# --------------------------------------------------------------------------- one CANN root per branch


def test_atc_runs_in_the_branch_cann_root_without_the_venv(tmp_path: Path, ascend: Path, home: Path,
                                                          venv_bin: Path, fake_atc: Path,
                                                          backend: Callable[..., AclBackend],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell sourced `latest` (8.1) and the venv is first on PATH; the branch names 8.0: atc is 8.0's, in 8.0's
    environment, and finds 8.0's python3, not the venv's."""
    kits = ascend / "ascend-toolkit"
    source_in_shell(monkeypatch, kits / "latest")
    spec = zoo.get("ran92_cifar10")
    out = tmp_path / "out"
    backend(aipp=False).compile(CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec)), 2, out)
    (call,) = calls(fake_atc)
    assert call["version"] == "8.0.RC3" and call["argv"][0] == str(home / "bin" / "atc")
    path = call["path"].split(os.pathsep)
    assert str(venv_bin) not in path and call["virtual_env"] is None
    assert other_roots(call["path"], ascend, home) == other_roots(call["ld_library_path"], ascend, home) == []
    assert call["python3"] == str(home / "bin" / "python3")
    info = json.loads((out / "ran92_cifar10-2-fp32.atc.json").read_text())
    assert info["cann_home"] == str(home) and info["set_env"] == str(home / "set_env.sh")
    assert info["atc_python"]["path"] == str(home / "bin" / "python3") and info["atc_python_problems"] == []
    assert info["atc_python"]["packages"]["numpy"] == "1.26.4" and info["cann_version"] == "8.0.RC3"

    # no acl.cann_home: the root the shell selected, and its own version
    AclBackend({"soc_version": "Ascend310P3", "aipp": False}).compile(
        CompileSource(spec=spec, onnx=tmp_path / "m.onnx"), 2, tmp_path / "out2")
    assert calls(fake_atc)[-1]["version"] == "8.1.RC1"


def test_each_branch_root_is_checked_against_toolkit_version(tmp_path: Path, ascend: Path, fake_atc: Path) -> None:
    spec = zoo.get("tresnet_m")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", spec)
    for version in VERSIONS:
        params = {"backend": "acl", "toolkit": {"version": version},
                  "acl": {"soc_version": "Ascend310P3", "aipp": False,
                          "cann_home": str(ascend / "ascend-toolkit" / version)}}
        meta = compile_model(spec.id, 1, tmp_path / version, params, onnx_path, None)
        assert meta["toolkit_version"] == version and calls(fake_atc)[-1]["version"] == version
        other = VERSIONS[1 - VERSIONS.index(version)]
        params["toolkit"]["version"] = other
        with pytest.raises(ToolkitMismatch, match=f"has acl {version}"):
            compile_model(spec.id, 1, tmp_path / other, params, onnx_path, None)
    assert len(calls(fake_atc)) == 2


def test_a_named_python_is_the_one_atc_runs(tmp_path: Path, home: Path, fake_atc: Path,
                                            backend: Callable[..., AclBackend]) -> None:
    python = tmp_path / "cann-py" / "bin" / "python3"
    make_exe(python, f"echo '{{\"executable\": \"{python}\", \"version\": \"3.9.18\", \"packages\": {{}}}}'\n",
             interpreter="/bin/sh")
    spec = zoo.get("ran92_cifar10")
    out = tmp_path / "out"
    backend(aipp=False, python=str(python)).compile(
        CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec)), 1, out)
    (call,) = calls(fake_atc)
    assert call["python3"] != str(home / "bin" / "python3") and str(python) in call["python3_text"]
    info = json.loads((out / "ran92_cifar10-1-fp32.atc.json").read_text())
    assert info["atc_python"]["executable"] == str(python) and info["atc_python"]["version"] == "3.9.18"
    assert "numpy missing" in info["atc_python_problems"]  # recorded; whether atc copes is atc's to say


# --------------------------------------------------------------------------- compile through a fake atc


@pytest.mark.parametrize("aipp", [True, False])
@pytest.mark.parametrize("bs", [1, 16])
@pytest.mark.parametrize("model", MODELS)
def test_compile_runs_atc(model: str, bs: int, aipp: bool, tmp_path: Path, fake_atc: Path,
                          backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get(model)
    out = tmp_path / "out"
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    om = backend(aipp=aipp).compile(src, bs, out)
    assert om == (out / f"{model}-{bs}-fp32.om").resolve() and om.read_bytes() == b"fake-om"
    assert om.stat().st_mode & 0o022 == 0 and not om.is_symlink()  # what aclruntime will open

    (call,) = calls(fake_atc)
    argv, args = call["argv"], args_of(call["argv"])
    c, h, w = spec.input_size
    assert args["framework"] == "5" and args["input_format"] == "NCHW"
    assert args["model"] == str((tmp_path / "m.onnx").resolve())
    assert args["output"] == str(out.resolve() / f"{model}-{bs}-fp32")
    assert args["input_shape"] == f"{spec.input_name}:{bs},{c},{h},{w}"
    assert args["soc_version"] == "Ascend310P3" and args["log"] == "error"
    # fp32 (the default precision) on CANN 8.0: the old flag, the graph's own precision
    assert args["precision_mode"] == "must_keep_origin_dtype" and args["output_type"] == "FP32"
    assert "precision_mode_v2" not in args

    if spec.op_precision:
        assert Path(args["op_precision_mode"]).read_text() == "Gelu=high_performance\n"
    else:
        assert "op_precision_mode" not in args
    assert ("op_precision_mode" in args) == (model == "smlpnet_tiny")

    if aipp:
        cfg = Path(args["insert_op_conf"]).read_text()
        assert args["enable_small_channel"] == "1"
        assert f"src_image_size_w : {w}\n" in cfg and f"src_image_size_h : {h}\n" in cfg
        assert ("min_chn_0 : 123.675" in cfg) == (spec.recipe.mean is not None)
        # 1/(255·0.229) for the ImageNet std, 1/255 for the recipes without normalisation
        assert f"var_reci_chn_0 : {VAR_RECI_0[spec.recipe.std]}\n" in cfg
    else:
        assert not any(a.startswith(("--insert_op_conf", "--enable_small_channel")) for a in argv)

    # atc ran in a scratch directory, logs and side files stay out of the artefact directory
    assert Path(call["cwd"]).resolve() != out.resolve() and not Path(call["cwd"]).exists()
    assert not (out / "fusion_result.json").exists()
    assert call["plog"] == str(out.resolve() / f"{model}-{bs}-fp32.logs")
    assert "ATC run success" in (out / f"{model}-{bs}-fp32.atc.stdout").read_text()
    info = json.loads((out / f"{model}-{bs}-fp32.atc.json").read_text())
    assert info["argv"] == argv and info["ok"] and info["returncode"] == 0 and info["error_code"] == ""


# --------------------------------------------------------------------------- precisions


def test_precision_mode_moved_to_the_precision_axis() -> None:
    """A params file still giving acl.precision_mode fails in one line that says where the setting went."""
    with pytest.raises(ParamsError) as err:
        AclBackend({"soc_version": "Ascend310P3", "precision_mode": "force_fp16"})
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("acl.precision_mode has moved") and "`precisions:`" in msg


def test_bf16_is_refused_in_one_line(backend: Callable[..., AclBackend]) -> None:
    b = backend()
    for ok in b.PRECISIONS:
        b.check_precision(ok)
    with pytest.raises(ValueError) as err:
        b.check_precision("bf16")
    assert "\n" not in str(err.value) and "acl cannot run precision 'bf16'" in str(err.value)


@pytest.mark.parametrize(("version", "flags"), [
    ("8.0.RC3", {"fp32": "--precision_mode=must_keep_origin_dtype", "fp16": "--precision_mode=force_fp16",
                 "mixed": "--precision_mode=allow_mix_precision"}),
    ("8.5.0", {"fp32": "--precision_mode_v2=origin", "fp16": "--precision_mode_v2=fp16",
               "mixed": "--precision_mode_v2=mixed_float16"}),
    ("9.0.0", {"fp32": "--precision_mode_v2=origin", "fp16": "--precision_mode_v2=fp16",
               "mixed": "--precision_mode_v2=mixed_float16"}),
])
def test_each_precision_gets_its_atc_flag_for_the_cann_generation(version: str, flags: dict[str, str],
                                                                  tmp_path: Path, ascend: Path, fake_atc: Path) -> None:
    """Exactly one precision flag per atc call, the one of that CANN's generation, recorded as given: in the argv,
    the .atc.json, precision_record() and describe()."""
    home = ascend / "ascend-toolkit" / version
    if not home.exists():
        toolkit(home, version)
    spec = zoo.get("smlpnet_tiny")
    src_onnx = tiny_onnx(tmp_path / "m.onnx", spec)
    for precision, flag in flags.items():
        b = AclBackend({"soc_version": "Ascend310P3", "cann_home": str(home), "aipp": False})
        out = tmp_path / precision
        om = b.compile(CompileSource(spec=spec, onnx=src_onnx, precision=precision), 4, out)
        assert om.name == f"smlpnet_tiny-4-{precision}.om"
        call = calls(fake_atc)[-1]
        assert call["version"] == version
        given = [a for a in call["argv"] if a.startswith("--precision_mode")]
        assert given == [flag]
        # the op-precision ini stays, whatever the precision
        assert Path(args_of(call["argv"])["op_precision_mode"]).read_text() == "Gelu=high_performance\n"
        info = json.loads((out / f"smlpnet_tiny-4-{precision}.atc.json").read_text())
        assert info["precision"] == precision and info["precision_flag"] == flag and "amct" not in info
        assert b.precision == precision and b.precision_record() == {"precision": precision, "atc_flag": flag}
        assert b.describe()["precision"] == f"{precision} ({flag})"


def test_compile_artefact_records_the_precision(tmp_path: Path, home: Path, fake_atc: Path) -> None:
    """What the compile stage writes: the precision's .om and, in meta.json, how the precision was made."""
    spec = zoo.get("ran92_cifar10")
    backend = get_backend("acl", {"soc_version": "Ascend310P3", "cann_home": str(home), "aipp": False})
    backend.precision = "fp16"  # as compile_artefact sets it from the axis
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec), precision="fp16")
    om = backend.compile(src, 2, tmp_path / "out")
    assert om.name == "ran92_cifar10-2-fp16.om"
    assert backend.precision_record() == {"precision": "fp16", "atc_flag": "--precision_mode=force_fp16"}
    fresh = AclBackend({"soc_version": "Ascend310P3", "cann_home": str(home)})
    fresh.precision = "fp16"  # from an artefact's meta.json: the flag it would get here, without compiling
    assert fresh.precision_record() == backend.precision_record()


def _calibration(spec: zoo.ModelSpec, n: int) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (n, *spec.input_size), dtype=np.uint8)


@pytest.mark.parametrize(("aipp", "elem", "n", "batches"), [
    (True, TensorProto.FLOAT, 32, [32]),  # AIPP: the float32 graph calibrates on the recipe's normalisation
    (False, TensorProto.UINT8, 40, [20, 20]),  # a uint8 graph normalises itself: the pixels as they are
])
def test_int8_runs_amct_then_atc_on_its_deploy_model(aipp: bool, elem: int, n: int, batches: list[int],
                                                     tmp_path: Path, home: Path, fake_atc: Path,
                                                     backend: Callable[..., AclBackend],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """AMCT's PTQ calls in order in the CANN environment, on the calibration images as the graph takes them, then
    atc compiles the deploy model save_model wrote (not the fp32 graph), at the flag of the rest of the graph."""
    record = tmp_path / "amct_calls.jsonl"
    monkeypatch.setenv("FAKE_AMCT_RECORD", str(record))
    spec = zoo.get("ran92_cifar10")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", spec, elem=elem)
    pixels = _calibration(spec, n)
    quantization = dataclasses.asdict(PrecisionConfig(calibration_images=n))
    out = tmp_path / "out"
    b = backend(aipp=aipp)
    om = b.compile(CompileSource(spec=spec, onnx=onnx_path, precision="int8", calibration=pixels,
                                 quantization=quantization), 8, out)
    assert om.name == "ran92_cifar10-8-int8.om" and om.read_bytes() == b"fake-om"

    made = records(record)
    assert [c["call"] for c in made] == ["create_quant_config", "quantize_model", "save_model"]
    assert {c["version"] for c in made} == {"fake-amct-8.0.RC3"}  # the branch root's AMCT, in its environment
    create, quantize, save = made
    assert create["model_file"] == quantize["model_file"] == str(onnx_path.resolve())
    assert create["batch_num"] == len(batches) and create["activation_offset"] is True and create["skip_layers"] == []
    assert quantize["config_file"] == create["config_file"] and quantize["config"]["batch_num"] == len(batches)
    assert save["modified_onnx_file"] == quantize["modified_onnx_file"] and save["record_exists"]
    assert save["record_file"] == quantize["record_file"]
    assert save["deploy"] == save["save_path"] + "_deploy_model.onnx"
    assert save["batches"] == [f"calibration_{i:04d}.npy" for i in range(len(batches))]

    (call,) = calls(fake_atc)
    args = args_of(call["argv"])
    assert args["model"] == save["deploy"] and call["model_sha256"] == save["deploy_sha256"]
    assert [a for a in call["argv"] if a.startswith("--precision_mode")] == ["--precision_mode=force_fp16"]

    # the data the calibration run got: every image once, as the graph takes it, in batches of at most 32
    info = json.loads((out / "ran92_cifar10-8-int8.atc.json").read_text())
    ran = info["amct"]["batches"]
    want = normalize(pixels, spec.recipe) if aipp else pixels
    assert [r["shape"] for r in ran] == [[k, *spec.input_size] for k in batches]
    assert {r["dtype"] for r in ran} == {"float32" if aipp else "uint8"}
    chunks = np.array_split(want, len(batches))
    assert [r["sha256"] for r in ran] == [hashlib.sha256(np.ascontiguousarray(c).tobytes()).hexdigest()
                                          for c in chunks]
    assert info["amct"]["calibration_images"] == n and info["amct"]["deploy_model_sha256"] == save["deploy_sha256"]
    assert info["precision"] == "int8" and info["precision_flag"] == "--precision_mode=force_fp16"

    # only the small files stay beside the .om: config, record, job, script, logs
    work = out / "ran92_cifar10-8-int8.amct"
    kept = sorted(p.name for p in work.iterdir())
    assert kept == ["amct.stderr", "amct.stdout", "amct_quantize.py", "config.json", "job.json",
                    "scale_offset_record.txt", "summary.json"]

    rec = b.precision_record()
    assert rec["precision"] == "int8" and rec["atc_flag"] == "--precision_mode=force_fp16"
    assert rec["quantizer"].startswith("amct_onnx") and "unverified" in rec["quantizer"]
    assert rec["amct"]["calibration_images"] == n and rec["amct"]["batch_num"] == len(batches)
    assert rec["amct"]["deploy_model_sha256"] == save["deploy_sha256"]
    assert rec["not_applied"] == {k: v for k, v in quantization.items() if k != "calibration_images"}


def test_int8_needs_the_calibration_images(tmp_path: Path, fake_atc: Path,
                                           backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("ran92_cifar10")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", spec)
    for pixels in (None, np.zeros((0, 3, 32, 32), np.uint8), np.zeros((4, 3, 224, 224), np.uint8),
                   np.zeros((4, 3, 32, 32), np.float32)):
        with pytest.raises(ValueError, match="int8 needs the calibration images") as err:
            backend(aipp=False).compile(CompileSource(spec=spec, onnx=onnx_path, precision="int8",
                                                      calibration=pixels), 1, tmp_path / "out")
        assert "omzoo calibrate" in str(err.value)
    assert not fake_atc.exists()


def test_a_failing_amct_stops_before_atc(tmp_path: Path, fake_atc: Path, backend: Callable[..., AclBackend],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_AMCT_RECORD", str(tmp_path / "amct_calls.jsonl"))
    monkeypatch.setenv("FAKE_AMCT_MODE", "fail")
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec), precision="int8",
                        calibration=_calibration(spec, 4))
    with pytest.raises(AmctError) as err:
        backend(aipp=False).compile(src, 1, tmp_path / "out")
    first = str(err.value).splitlines()[0]
    assert "AMCT int8 quantization failed for ran92_cifar10-1-int8" in first and "no scale for layer conv1" in first
    assert not fake_atc.exists()


def test_a_python_without_amct_is_named(tmp_path: Path, home: Path, fake_atc: Path,
                                        backend: Callable[..., AclBackend]) -> None:
    """The toolkit's Python lacks amct_onnx: the error says which Python and what to install."""
    shutil.rmtree(home / "python" / "site-packages" / "amct_onnx")
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec), precision="int8",
                        calibration=_calibration(spec, 2))
    with pytest.raises(AmctError) as err:
        backend(aipp=False).compile(src, 1, tmp_path / "out")
    assert f"{home / 'bin' / 'python3'} cannot import amct_onnx" in str(err.value).splitlines()[0]
    assert not fake_atc.exists()


def test_compile_detects_soc_with_npu_smi(tmp_path: Path, home: Path, fake_atc: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cann, "NPU_SMI", str(make_exe(tmp_path / "bin" / "npu-smi", f"print({NPU_SMI_910B!r})")))
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    AclBackend({"aipp": False, "cann_home": str(home)}).compile(src, 4, tmp_path / "out")
    assert args_of(calls(fake_atc)[0]["argv"])["soc_version"] == "Ascend910B3"


def test_compile_without_soc_says_what_to_set(tmp_path: Path, fake_atc: Path,
                                              backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    with pytest.raises(RuntimeError, match="acl.soc_version"):
        backend(aipp=False, soc_version="").compile(src, 4, tmp_path / "out")


def test_failing_atc_reports_exit_code_error_code_and_stderr(tmp_path: Path, fake_atc: Path,
                                                            backend: Callable[..., AclBackend],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.get("seresnext101_32x4d")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    out = tmp_path / "out"
    out.mkdir()
    (out / "seresnext101_32x4d-8-fp32.om").write_bytes(b"stale")
    monkeypatch.setenv("FAKE_ATC_MODE", "fail")
    with pytest.raises(AtcError) as err:
        backend(aipp=False).compile(src, 8, out)
    msg = str(err.value)
    assert "exit code 3" in msg and "E10016" in msg and "fake atc: the parser gave up" in msg
    assert err.value.returncode == 3 and err.value.error_code == "E10016"
    assert not (out / "seresnext101_32x4d-8-fp32.om").exists()  # the stale file cannot pass for a result
    info = json.loads((out / "seresnext101_32x4d-8-fp32.atc.json").read_text())
    assert not info["ok"] and info["error_code"] == "E10016"
    assert "parser gave up" in (out / "seresnext101_32x4d-8-fp32.atc.stderr").read_text()
    assert "atc's Python" not in msg  # nothing to say about a Python that has what CANN needs


def test_failing_atc_names_new_style_codes_and_what_its_python_lacks(tmp_path: Path, home: Path, fake_atc: Path,
                                                                     backend: Callable[..., AclBackend],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The public failure: the venv's numpy 2 / protobuf 7 / no decorator under atc's operator compiler."""
    set_python_packages(home, VENV_PACKAGES)
    monkeypatch.setenv("FAKE_ATC_MODE", "fail")
    monkeypatch.setenv("FAKE_ATC_ERROR", "EC0010: Failed to import Python module [No module named 'decorator'].")
    spec = zoo.get("tresnet_m")
    with pytest.raises(AtcError) as err:
        backend(aipp=False).compile(CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec)), 1,
                                    tmp_path / "out")
    assert err.value.error_code == "EC0010"
    msg = str(err.value)
    assert f"atc's Python {home / 'bin' / 'python3'}" in msg and "decorator missing" in msg
    assert "numpy 2.4.0" in msg and "protobuf 7.34.0" in msg and "acl.python" in msg


@pytest.mark.parametrize(("mode", "why"), [("quiet", "no 'ATC run success'"), ("no_om", "missing or empty")])
def test_exit_zero_is_not_enough(mode: str, why: str, tmp_path: Path, fake_atc: Path,
                                 backend: Callable[..., AclBackend], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.get("tresnet_m")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    monkeypatch.setenv("FAKE_ATC_MODE", mode)
    with pytest.raises(AtcError, match=why):
        backend(aipp=False).compile(src, 1, tmp_path / "out")


def test_onnx_input_checks_before_atc(tmp_path: Path, fake_atc: Path, backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("scnet50_v1d")
    wrong = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "w.onnx", spec, name="images"))
    with pytest.raises(ValueError, match="registry says 'input'"):
        backend(aipp=False).compile(wrong, 1, tmp_path / "out")
    u8 = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "u8.onnx", spec, elem=TensorProto.UINT8))
    with pytest.raises(ValueError, match="normalise again"):
        backend(aipp=True).compile(u8, 1, tmp_path / "out")
    assert not fake_atc.exists()
    assert backend(aipp=False).compile(u8, 1, tmp_path / "out").is_file()  # uint8 graph without AIPP is fine


@pytest.mark.parametrize(("onnx_dir", "out_dir", "role", "bad"), [
    ("models", "my out", "output", "' '"),
    ("a+b", "out", "ONNX", "'+'"),
    ("models", "user@host", "AIPP config", "'@'"),
    ("models", "~tmp", "artefact", "'~'"),
])
def test_unsafe_paths_stop_compile_before_atc(onnx_dir: str, out_dir: str, role: str, bad: str, tmp_path: Path,
                                              fake_atc: Path, backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("scnet50_v1d")
    (tmp_path / onnx_dir).mkdir()
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / onnx_dir / "m.onnx", spec))
    with pytest.raises(ValueError, match="A-Za-z0-9_./-") as err:
        backend().compile(src, 1, tmp_path / out_dir)
    assert role in str(err.value) and bad in str(err.value)
    assert not fake_atc.exists() and not (tmp_path / out_dir).exists()


def test_too_deep_an_artefact_stops_compile_before_atc(tmp_path: Path, fake_atc: Path,
                                                       backend: Callable[..., AclBackend]) -> None:
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    deep = tmp_path.joinpath(*["d"] * 33)
    with pytest.raises(ValueError, match=r"'/' in its absolute path; aclruntime allows 32"):
        backend(aipp=False).compile(src, 1, deep)
    assert not fake_atc.exists()


# --------------------------------------------------------------------------- runtime, against a fake aclruntime

EXEC_MS = 2.5


def fake_aclruntime() -> types.ModuleType:
    """The aclruntime surface the backend uses (session, tensors, summary); the fake `.om` is JSON naming its input
    byte size."""
    mod = types.ModuleType("aclruntime")
    mod.events = []  # type: ignore[attr-defined]

    class Tensor:
        def __init__(self, arr: np.ndarray) -> None:
            assert arr.flags.c_contiguous and arr.dtype != np.float64
            self.arr, self.device = arr.copy(), -1

        def to_device(self, device: int) -> None:
            self.device = device

        def to_host(self) -> None:
            self.device = -1

        def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
            assert self.device == -1, "np.array() works on host tensors only"
            return self.arr

    class Summary:
        def __init__(self, times: list[tuple[float, float]]) -> None:
            self.exec_time_list = list(times)

    class InferenceSession:
        def __init__(self, path: str, device: int, options: Any) -> None:
            self.meta = json.loads(Path(path).read_text())
            self.device, self.options_, self.times, self.clock = device, options, [], 1000.0
            self.static = False
            mod.events.append(("open", path, device, options.log_level))

        def get_inputs(self) -> list[Any]:
            return [SimpleNamespace(name="input", shape=self.meta["shape"], realsize=self.meta["realsize"])]

        def get_outputs(self) -> list[Any]:
            return [SimpleNamespace(name="out_0"), SimpleNamespace(name="out_1")]

        def set_staticbatch(self) -> None:
            self.static = True

        def set_dynamic_batchsize(self, b: int) -> None:
            mod.events.append(("gear", b))

        def run(self, names: list[str], feeds: list[Any]) -> list[Any]:
            (x,) = feeds
            assert names == ["out_0", "out_1"] and x.device == self.device and self.static
            assert x.arr.nbytes == self.meta["realsize"], "check size not match"
            self.times.append((self.clock, self.clock + EXEC_MS))
            self.clock += 10.0
            n = x.arr.shape[0]
            logits = x.arr.reshape(n, -1).astype(np.float32).mean(axis=1, keepdims=True) + np.arange(10)
            outs = [Tensor(logits.astype(np.float16)), Tensor(np.zeros(1, np.float32))]
            for o in outs:
                o.device = self.device
            return outs

        def sumary(self) -> Summary:
            return Summary(self.times)

        def reset_sumaryinfo(self) -> None:
            self.times.clear()

        def free_resource(self) -> None:
            mod.events.append(("free",))

        @staticmethod
        def finalize() -> None:
            mod.events.append(("finalize",))

    mod.Tensor = Tensor  # type: ignore[attr-defined]
    mod.InferenceSession = InferenceSession  # type: ignore[attr-defined]
    mod.session_options = lambda: SimpleNamespace(loop=1, log_level=2, acl_json_path="")  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def aclrt(monkeypatch: pytest.MonkeyPatch, home: Path):
    """The fake module as `aclruntime`, in a process marked as started in the branch root's environment."""
    mod = fake_aclruntime()
    monkeypatch.setitem(sys.modules, "aclruntime", mod)
    monkeypatch.setenv(cann.CANN_HOME_VAR, os.path.realpath(home))
    yield mod
    acl._FINALIZER.pop("module", None)  # keep the process-exit hook away from the fake


def fake_om(path: Path, realsize: int, shape: list[int]) -> Path:
    path.write_text(json.dumps({"realsize": realsize, "shape": shape}))
    path.chmod(0o644)  # as compile leaves it, whatever this machine's umask
    return path


def test_aipp_artefact_takes_nhwc_uint8(tmp_path: Path, aclrt: types.ModuleType,
                                        backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "ran92_cifar10-4.om", 4 * 32 * 32 * 3, [4, 3, 32, 32])
    b = backend(aipp=True, device_id=1, log="warning")
    b.load(om, 4, spec_for(om))
    assert b.spec is not None and b.spec.id == "ran92_cifar10"
    assert aclrt.events[0] == ("open", str(om), 1, 3)
    assert b.input_spec() == ((4, 32, 32, 3), np.dtype(np.uint8))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    x = b.feed(pixels)
    assert x.flags.c_contiguous and x.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(x[:, :, :, 1], pixels[:, 1])
    logits = b.run(x)
    assert logits.dtype == np.float32 and logits.shape == (4, 10)
    np.testing.assert_allclose(logits[:, 0], pixels.reshape(4, -1).mean(axis=1), rtol=1e-3)
    # compute time is end - start of this call's execute, not the mean of the (start, end) pair
    assert b.step(x) == pytest.approx(EXEC_MS) and b.step(x) == pytest.approx(EXEC_MS)
    assert len(b._sess.times) == 1
    with pytest.raises(ValueError, match="expected uint8"):
        b.run(pixels)


def test_float32_artefact_feeds_the_recipe_normalisation(tmp_path: Path, aclrt: types.ModuleType,
                                                          backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "art.om", 2 * 3 * 224 * 224 * 4, [2, 3, 224, 224])
    b = backend(aipp=False)
    b.load(om, 2, zoo.get("scnet50_v1d"))
    assert b.input_spec() == ((2, 3, 224, 224), np.dtype(np.float32))
    pixels = np.random.default_rng(1).integers(0, 256, (2, 3, 224, 224), dtype=np.uint8)
    x = b.feed(pixels)
    np.testing.assert_array_equal(x, normalize(pixels, zoo.get("scnet50_v1d").recipe))
    assert b.run(x).shape == (2, 10)


def test_uint8_graph_without_aipp_stays_nchw(tmp_path: Path, aclrt: types.ModuleType,
                                             backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "tresnet_m-1.om", 3 * 224 * 224, [1, 3, 224, 224])
    b = backend(aipp=False)
    b.load(om, 1, spec_for(om))
    pixels = np.zeros((1, 3, 224, 224), np.uint8)
    assert b.input_spec() == ((1, 3, 224, 224), np.dtype(np.uint8))
    assert b.feed(pixels).shape == (1, 3, 224, 224)


def test_dynamic_batch_om_gets_its_gear(tmp_path: Path, aclrt: types.ModuleType,
                                        backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "ran92_cifar10-8.om", 8 * 32 * 32 * 3, [-1, 3, 32, 32])
    b = backend()
    b.load(om, 8, spec_for(om))
    assert ("gear", 8) in aclrt.events


def test_size_mismatch_is_caught_at_load(tmp_path: Path, aclrt: types.ModuleType,
                                         backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "ran92_cifar10-4.om", 4 * 3 * 32 * 32 * 4, [4, 3, 32, 32])  # a float32 .om
    with pytest.raises(RuntimeError, match="aipp=True"):
        backend(aipp=True).load(om, 4, spec_for(om))
    assert ("free",) in aclrt.events


def test_close_and_finalize_once(tmp_path: Path, aclrt: types.ModuleType,
                                 backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "ran92_cifar10-1.om", 32 * 32 * 3, [1, 3, 32, 32])
    first, second = backend(), backend()
    first.load(om, 1, spec_for(om))
    second.load(om, 1, spec_for(om))
    first.close()
    first.close()
    assert aclrt.events.count(("free",)) == 1
    acl._finalize_acl()  # what atexit runs: free what is still open, then aclFinalize once
    assert aclrt.events[-2:] == [("free",), ("finalize",)]
    acl._finalize_acl()
    assert aclrt.events.count(("finalize",)) == 1


def test_describe(home: Path, backend: Callable[..., AclBackend]) -> None:
    b = backend(aipp=False)
    info = b.describe()
    assert tuple(info) == DESCRIBE_KEYS
    assert info["backend"] == "acl" and info["runtime"] == "CANN" and info["runtime_version"] == "8.0.RC3"
    extra = info["extra"]
    assert extra["soc_version"] == "Ascend310P3" and extra["aipp"] == "0"
    assert info["precision"] == "fp32 (--precision_mode=must_keep_origin_dtype)"
    b.precision = "mixed"
    assert b.describe()["precision"] == "mixed (--precision_mode=allow_mix_precision)"
    b.precision = "int8"
    assert b.describe()["precision"] == "int8 (AMCT deploy model, --precision_mode=force_fp16)"
    assert {"driver_version", "aclruntime_version", "ais_bench_version"} <= set(extra)
    assert extra["cann_home"] == str(home)
    assert all(isinstance(v, str) for v in extra.values())


def test_the_fingerprint_names_the_cann_root_atc_driver_soc_and_precision(ascend: Path,
                                                                          backend: Callable[..., AclBackend]) -> None:
    """What an in-place CANN upgrade changes shows in the fingerprint: the `latest` link moving, or atc rewritten."""
    latest = ascend / "ascend-toolkit" / "latest"
    fp = backend(cann_home=str(latest)).fingerprint()
    atc = (ascend / "ascend-toolkit" / VERSIONS[1] / "bin" / "atc").resolve()
    assert fp["runtime"] == "CANN" and fp["runtime_version"] == VERSIONS[1] and fp["cann_home"] == str(latest)
    assert fp["atc"] == str(atc) and len(fp["atc_sha256"]) == 64 and fp["atc_version"] == "unknown"
    assert fp["precision"] == "fp32 (--precision_mode=must_keep_origin_dtype)" and fp["soc_version"] == "Ascend310P3"
    assert fp["driver_version"] != ""
    assert fp["cpu"] and fp["cores"]
    latest.unlink()
    latest.symlink_to(VERSIONS[0])  # the link moves: another version, another atc
    moved = backend(cann_home=str(latest)).fingerprint()
    assert moved["runtime_version"] == VERSIONS[0] and moved["atc"] != fp["atc"]
    atc0 = Path(moved["atc"])
    (atc0.parents[1] / "version.info").write_text("Version=7.5.0.1\n")  # <root>/compiler/version.info on a device
    atc0.write_text(atc0.read_text() + "# patched\n")  # the same version number, another atc
    patched = backend(cann_home=str(latest)).fingerprint()
    assert patched["atc_sha256"] != moved["atc_sha256"] and patched["atc_version"] == "7.5.0.1"
    int8 = backend(cann_home=str(latest))
    int8.precision = "int8"  # as load_compiled sets it: the toolkit is the same at every precision of the axis
    assert int8.fingerprint() == patched and int8.precision == "int8"


def test_a_host_without_cann_has_no_fingerprint(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="acl"):
        AclBackend({"cann_home": str(tmp_path / "none")}).fingerprint()


def test_device_processes_are_npu_smis_process_table(tmp_path: Path, backend: Callable[..., AclBackend],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert backend().device_processes() == []  # no npu-smi on the isolated host
    use_host(monkeypatch, tmp_path / "host", npu_smi=NPU_SMI_310P)
    b = backend()
    assert b.accelerator() == "npu" and b.device_processes() == [DeviceProcess("npu:0", 4321, 1034.0, "python3")]
    assert b.device_state() == {}


def test_load_compiled_opens_an_acl_artefact(tmp_path: Path, home: Path, aclrt: types.ModuleType) -> None:
    fake_om(tmp_path / "model.om", 2 * 32 * 32 * 3, [2, 3, 32, 32])
    meta = {"model": "ran92_cifar10", "backend": "acl", "batch_size": 2, "artefact": "model.om",
            "options": {"soc_version": "Ascend310P3", "aipp": True, "cann_home": str(home)}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    b, _ = load_compiled(tmp_path)
    assert b.input_spec() == ((2, 32, 32, 3), np.dtype(np.uint8))
    b.close()


def test_finalize_is_skipped_on_wheels_whose_finalize_is_an_instance_method() -> None:
    """2022-11..2024-02 wheels: no free_resource, finalize(self); the class-level call would raise TypeError."""
    made: list[str] = []

    class OldSession:
        def finalize(self) -> None:
            made.append("finalize")

    acl._FINALIZER["module"] = SimpleNamespace(InferenceSession=OldSession)
    acl._finalize_acl()  # no TypeError
    assert made == [] and "module" not in acl._FINALIZER


def test_load_refuses_what_aclruntime_refuses(tmp_path: Path, aclrt: types.ModuleType,
                                              backend: Callable[..., AclBackend]) -> None:
    om = fake_om(tmp_path / "ran92_cifar10-1.om", 32 * 32 * 3, [1, 3, 32, 32])
    link = tmp_path / "link" / "ran92_cifar10-1.om"
    link.parent.mkdir()
    link.symlink_to(om)
    with pytest.raises(ValueError, match="is a symlink"):
        backend().load(link, 1, spec_for(link))
    om.chmod(0o664)
    with pytest.raises(ValueError, match=r"writable by group or others \(mode 0664\).*chmod go-w"):
        backend().load(om, 1, spec_for(om))
    with pytest.raises(ValueError, match="ran92_cifar10-2.om: no such compiled model"):
        backend().load(tmp_path / "ran92_cifar10-2.om", 2, spec_for(tmp_path / "ran92_cifar10-2.om"))
    fifo = tmp_path / "fifo" / "ran92_cifar10-1.om"
    fifo.parent.mkdir()
    os.mkfifo(fifo, 0o644)
    with pytest.raises(ValueError, match="ran92_cifar10-1.om: is a FIFO"):  # named, never opened for reading
        backend().load(fifo, 1, spec_for(fifo))
    assert aclrt.events == []  # no session was opened on any of them


def test_load_outside_the_cann_environment_asks_for_a_child_process(
        tmp_path: Path, home: Path, venv_bin: Path, backend: Callable[..., AclBackend],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aclruntime", None)  # would fail if load() got as far as importing it
    om = fake_om(tmp_path / "ran92_cifar10-1.om", 32 * 32 * 3, [1, 3, 32, 32])
    for marker in (None, os.path.realpath(home.parent / VERSIONS[1])):  # never set, or set for another root
        if marker:
            monkeypatch.setenv(cann.CANN_HOME_VAR, marker)
        with pytest.raises(RestartInEnvironment) as err:
            backend().load(om, 1, spec_for(om))
        env = err.value.env
        assert env[cann.CANN_HOME_VAR] == os.path.realpath(home)
        assert env["LD_LIBRARY_PATH"].split(os.pathsep)[0] == str(home / "lib64")
        assert str(venv_bin) not in env["PATH"].split(os.pathsep) and "VIRTUAL_ENV" not in env


def _artefact(tmp_path: Path, home: Path) -> Path:
    art = tmp_path / "compiled" / "ran92_cifar10-1"
    art.mkdir(parents=True)
    fake_om(art / "ran92_cifar10-1.om", 32 * 32 * 3, [1, 3, 32, 32])
    meta = {"model": "ran92_cifar10", "backend": "acl", "batch_size": 1, "artefact": "ran92_cifar10-1.om",
            "options": {"soc_version": "Ascend310P3", "cann_home": str(home)}}
    (art / "meta.json").write_text(json.dumps(meta))
    return art


def test_aclruntime_runs_in_a_child_started_with_the_cann_environment(
        tmp_path: Path, ascend: Path, home: Path, venv_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`omzoo infer` on an 8.0 artefact from a shell that sourced 8.1, venv first on PATH: the command runs again in
    a child whose environment is 8.0's from the start; that child imports the toolkit's (fake) aclruntime."""
    source_in_shell(monkeypatch, ascend / "ascend-toolkit" / "latest")
    record = tmp_path / "aclruntime.jsonl"
    monkeypatch.setenv("FAKE_ACLRUNTIME_RECORD", str(record))
    art = _artefact(tmp_path, home)
    rc = cli.main(["infer", "--compiled", str(art), "--shards", str(tmp_path / "shards"), "--out",
                   str(tmp_path / "out")])
    assert rc == 1  # the child's: the fake aclruntime finds no NPU
    (opened,) = records(record)
    assert opened["event"] == "session" and opened["version"] == "8.0.RC3"
    assert opened["cann_home"] == os.path.realpath(home)
    assert opened["ld_library_path"].split(os.pathsep)[0] == str(home / "lib64")
    assert other_roots(opened["ld_library_path"], ascend, home) == other_roots(opened["path"], ascend, home) == []
    assert str(venv_bin) not in opened["path"].split(os.pathsep) and opened["virtual_env"] is None


def test_the_child_does_not_rerun_itself(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OMZOO_RERUN", "1")  # as in the child, whose environment somehow is still not the root's
    rc = cli.main(["infer", "--compiled", str(_artefact(tmp_path, home)), "--shards", str(tmp_path / "s"),
                   "--out", str(tmp_path / "out")])
    assert rc == 2 and "still not in the environment" in capsys.readouterr().err
