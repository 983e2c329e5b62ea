"""Ascend backend without an NPU: pure helpers on ASCEND.md's texts, the real atc subprocess flow against a
fake `atc` on PATH, and the aclruntime glue against a fake module that follows ASCEND.md §2's API."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import stat
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from omzoo import zoo
from omzoo.backends import acl
from omzoo.backends.acl import (
    AclBackend,
    AtcError,
    aipp_config,
    atc_command,
    cann_version_from,
    detect_environment,
    driver_version_from,
    op_precision_ini,
    parse_npu_smi,
    parse_version_info,
    soc_from_npu_smi,
)
from omzoo.backends.base import BackendUnavailable, CompileSource, get_backend

MODELS = ["scnet50_v1d", "seresnext101_32x4d", "tresnet_m", "smlpnet_tiny", "ran92_cifar10"]
IMAGENET = SimpleNamespace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
NO_NORM = SimpleNamespace(mean=None, std=None)

# ASCEND.md §6, verbatim
AIPP_IMAGENET_224 = """\
aipp_op {
    aipp_mode : static
    related_input_rank : 0
    input_format : RGB888_U8
    src_image_size_w : 224
    src_image_size_h : 224
    csc_switch : false
    rbuv_swap_switch : false
    min_chn_0 : 123.675
    min_chn_1 : 116.28
    min_chn_2 : 103.53
    var_reci_chn_0 : 0.0171247538316637
    var_reci_chn_1 : 0.0175070028011204
    var_reci_chn_2 : 0.0174291938997821
}
"""
AIPP_UNIT_224 = """\
aipp_op {
    aipp_mode : static
    related_input_rank : 0
    input_format : RGB888_U8
    src_image_size_w : 224
    src_image_size_h : 224
    csc_switch : false
    rbuv_swap_switch : false
    var_reci_chn_0 : 0.00392156862745098
    var_reci_chn_1 : 0.00392156862745098
    var_reci_chn_2 : 0.00392156862745098
}
"""

# ASCEND.md §7 formats
TOOLKIT_INFO = """package_name=Ascend-cann-toolkit
version=8.0.RC3
innerversion=V100R001C19SPC001B123
arch=x86_64
path=/usr/local/Ascend/ascend-toolkit/8.0.RC3/x86_64-linux
"""
VERSION_CFG = "runtime_running_version=[7.3.0.1.231:8.0.RC2]\n"
# Driver key names are unconfirmed (ASCEND.md §9.6); this is the commonly seen shape.
DRIVER_INFO = "Version=24.1.rc2\nascendhal_version=7.35.19\npackage_version=24.1.rc2\n"

# ASCEND.md gives no npu-smi sample; these follow the usual 310P and 910B layouts (unverified).
NPU_SMI_310P = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                                   Version: 23.0.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310P3                 | OK              | NA           46                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 7            1782 / 21527                            |
+===============================+=================+======================================================+
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Chip                  | Process id      | Process name             | Process memory(MB)        |
+===============================+=================+======================================================+
| 0       0                     | 4321            | python3                  | 1034                      |
+===============================+=================+======================================================+
"""
NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.rc2                 Version: 24.1.rc2                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.6        40                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 90.1        39                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           0    / 0          3162 / 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""


# --------------------------------------------------------------------------- helpers


def make_exe(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


FAKE_ATC = """\
import json, os, pathlib, sys
out = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--output="))
with open(os.environ["FAKE_ATC_RECORD"], "a") as f:
    f.write(json.dumps({"argv": sys.argv, "cwd": os.getcwd(),
                        "plog": os.environ.get("ASCEND_PROCESS_LOG_PATH")}) + "\\n")
pathlib.Path("fusion_result.json").write_text("{}")  # a side file in the working directory
mode = os.environ.get("FAKE_ATC_MODE", "ok")
print("ATC start working now, please wait for a moment.")
if mode == "fail":
    print("ATC run failed, Please check the detail log, Try 'atc --help' for more information")
    print("E10016: Input shape name [foo] is not found in the model")
    print("fake atc: the parser gave up", file=sys.stderr)
    sys.exit(3)
if mode != "no_om":
    pathlib.Path(out + ".om").write_bytes(b"fake-om")
if mode != "quiet":
    print("ATC run success, welcome to the next use.")
"""


@pytest.fixture
def fake_atc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recording `atc` first on PATH; returns the record file (one JSON line per call)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make_exe(bin_dir / "atc", FAKE_ATC)
    record = tmp_path / "atc_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    monkeypatch.delenv("FAKE_ATC_MODE", raising=False)
    monkeypatch.delenv("ASCEND_PROCESS_LOG_PATH", raising=False)
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


def backend(**options: Any) -> AclBackend:
    return AclBackend({"soc_version": "Ascend310P3", **options})


def args_of(argv: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv[1:])


# --------------------------------------------------------------------------- pure helpers


def test_atc_command_matches_the_guide_form() -> None:
    argv = atc_command(onnx=Path("/m/scnet.onnx"), output_prefix=Path("/o/scnet50_v1d_bs4"), input_name="input",
                       batch_size=4, input_size=(3, 224, 224), soc_version="Ascend310P3")
    assert argv == ["atc", "--framework=5", "--model=/m/scnet.onnx", "--output=/o/scnet50_v1d_bs4",
                    "--input_format=NCHW", "--input_shape=input:4,3,224,224", "--soc_version=Ascend310P3",
                    "--log=error"]
    full = atc_command(onnx=Path("m.onnx"), output_prefix=Path("o"), input_name="image", batch_size=1,
                       input_size=(3, 32, 32), soc_version="Ascend310P3", atc="/opt/atc", log="debug",
                       precision_mode="must_keep_origin_dtype", op_precision=Path("p.ini"), aipp=Path("a.cfg"),
                       output_type="FP32")
    assert full[0] == "/opt/atc"
    assert full[5:] == ["--input_shape=image:1,3,32,32", "--soc_version=Ascend310P3", "--log=debug",
                        "--precision_mode=must_keep_origin_dtype", "--op_precision_mode=p.ini",
                        "--insert_op_conf=a.cfg", "--enable_small_channel=1", "--output_type=FP32"]
    with pytest.raises(ValueError):
        atc_command(onnx=Path("m"), output_prefix=Path("o"), input_name="x", batch_size=0,
                    input_size=(3, 8, 8), soc_version="s")


def test_aipp_config_imagenet_is_ascend_md_verbatim() -> None:
    assert aipp_config(IMAGENET, 224, 224) == AIPP_IMAGENET_224


def test_aipp_config_without_normalisation_is_div255_only() -> None:
    assert aipp_config(NO_NORM, 224, 224) == AIPP_UNIT_224
    cifar = aipp_config(NO_NORM, 32, 32)
    assert "src_image_size_w : 32\n" in cifar and "src_image_size_h : 32\n" in cifar
    assert "min_chn" not in cifar and "mean_chn" not in cifar


def test_aipp_config_half_half_and_raw_rows_of_the_table() -> None:
    half = aipp_config(SimpleNamespace(mean=(0.5,) * 3, std=(0.5,) * 3), 8, 8)
    assert half.count(": 127.5\n") == 3 and half.count(": 0.00784313725490196\n") == 3
    raw = aipp_config(SimpleNamespace(mean=(0, 0, 0), std=(1 / 255,) * 3), 8, 8)
    assert "min_chn" not in raw and "var_reci" not in raw


def test_aipp_config_matches_the_real_profiles() -> None:
    profiles = pytest.importorskip("omzoo.data.profiles")
    assert aipp_config(profiles.get_profile("imagenet"), 224, 224) == AIPP_IMAGENET_224
    assert aipp_config(profiles.get_profile("tresnet"), 224, 224) == AIPP_UNIT_224


def test_aipp_config_rejects_bad_stats() -> None:
    with pytest.raises(ValueError):
        aipp_config(SimpleNamespace(mean=(0.5, 0.5), std=(1, 1)), 8, 8)
    with pytest.raises(ValueError):
        aipp_config(SimpleNamespace(mean=None, std=(1, 0, 1)), 8, 8)


def test_op_precision_ini() -> None:
    assert op_precision_ini({"Gelu": "high_performance"}) == "Gelu=high_performance\n"
    assert op_precision_ini({"Conv2D": "high_precision", "SoftmaxV2": "high_precision"}) == \
        "Conv2D=high_precision\nSoftmaxV2=high_precision\n"
    with pytest.raises(ValueError):
        op_precision_ini({"Gelu": ""})


def test_version_files() -> None:
    kv = parse_version_info(TOOLKIT_INFO)
    assert kv["package_name"] == "Ascend-cann-toolkit" and cann_version_from(kv) == "8.0.RC3"
    assert cann_version_from(parse_version_info(VERSION_CFG)) == "8.0.RC2"
    assert cann_version_from(parse_version_info("arch=x86_64\n")) is None
    assert driver_version_from(parse_version_info(DRIVER_INFO)) == "24.1.rc2"
    assert driver_version_from(parse_version_info("package_version=23.0.3\n")) == "23.0.3"
    assert parse_version_info("# comment\n\nnoequals\n a = b \n") == {"a": "b"}


def test_npu_smi_310p() -> None:
    parsed = parse_npu_smi(NPU_SMI_310P)
    assert parsed["version"] == "23.0.0"
    assert [(d["npu"], d["name"], d["health"]) for d in parsed["devices"]] == [("0", "310P3", "OK")]
    assert parsed["devices"][0]["chips"] == [{"chip": "0", "device": "0", "bus_id": "0000:3B:00.0",
                                               "aicore_pct": "7"}]
    assert parsed["processes"] == [{"npu": "0", "chip": "0", "pid": "4321", "name": "python3"}]
    assert soc_from_npu_smi(parsed) == "Ascend310P3"


def test_npu_smi_910b_and_garbage() -> None:
    parsed = parse_npu_smi(NPU_SMI_910B)
    assert [d["name"] for d in parsed["devices"]] == ["910B3", "910B3"]
    assert all(len(d["chips"]) == 1 for d in parsed["devices"]) and parsed["processes"] == []
    assert soc_from_npu_smi(parsed) == "Ascend910B3"
    empty = parse_npu_smi("dcmi module initialize failed. ret is -8005\n")
    assert empty == {"version": "unknown", "devices": [], "processes": []}
    assert soc_from_npu_smi(empty) is None


# --------------------------------------------------------------------------- environment detection


def test_detect_environment_absent_is_unknown(tmp_path: Path) -> None:
    env = detect_environment(environ={}, root=tmp_path / "none", npu_smi=str(tmp_path / "no-npu-smi"),
                             etc=tmp_path)
    assert set(env.values()) == {"unknown"}
    assert set(env) == {"cann_version", "cann_version_source", "driver_version", "driver_version_source",
                        "soc_version", "soc_version_source"}


def test_detect_environment_reads_files_and_npu_smi(tmp_path: Path) -> None:
    home = tmp_path / "toolkit" / "latest"
    (home / f"{platform.machine()}-linux").mkdir(parents=True)
    (home / f"{platform.machine()}-linux" / "ascend_toolkit_install.info").write_text(TOOLKIT_INFO)
    root = tmp_path / "Ascend"
    (root / "driver").mkdir(parents=True)
    (root / "driver" / "version.info").write_text(DRIVER_INFO)
    npu_smi = make_exe(tmp_path / "npu-smi", f"print({NPU_SMI_310P!r})")
    env = detect_environment(environ={"ASCEND_TOOLKIT_HOME": str(home)}, root=root, npu_smi=str(npu_smi),
                             etc=tmp_path)
    assert env["cann_version"] == "8.0.RC3" and env["cann_version_source"].endswith("ascend_toolkit_install.info")
    assert env["driver_version"] == "24.1.rc2" and env["driver_version_source"].endswith("version.info")
    assert (env["soc_version"], env["soc_version_source"]) == ("Ascend310P3", "npu-smi info")


def test_detect_environment_fallbacks_and_never_raises(tmp_path: Path) -> None:
    root = tmp_path / "Ascend"
    (root / "ascend-toolkit" / "latest").mkdir(parents=True)
    (root / "ascend-toolkit" / "latest" / "version.cfg").write_text(VERSION_CFG)
    (root / "driver" / "version.info").mkdir(parents=True)  # a directory where a file should be
    bad = make_exe(tmp_path / "npu-smi", "import sys; print('garbage'); sys.exit(9)")
    env = detect_environment(environ={"ASCEND_TOOLKIT_HOME": str(tmp_path / "missing")}, root=root,
                             npu_smi=str(bad), etc=tmp_path)
    assert env["cann_version"] == "8.0.RC2" and env["cann_version_source"].endswith("version.cfg")
    assert env["driver_version"] == env["soc_version"] == "unknown"
    # npu-smi supplies the driver version when no file does
    npu_smi = make_exe(tmp_path / "npu-smi2", f"print({NPU_SMI_910B!r})")
    env = detect_environment(environ={}, root=root, npu_smi=str(npu_smi), etc=tmp_path)
    assert (env["driver_version"], env["driver_version_source"]) == ("24.1.rc2", "npu-smi info")


def test_detect_environment_home_path_install_info(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ascend_nnae_install.info").write_text("version=8.1.RC1\n")
    env = detect_environment(environ={"ASCEND_HOME_PATH": str(home)}, root=tmp_path / "none", etc=tmp_path,
                             npu_smi=str(tmp_path / "none"))
    assert env["cann_version"] == "8.1.RC1"


# --------------------------------------------------------------------------- availability and options


def test_registered_and_options() -> None:
    b = get_backend("acl", {"soc_version": "Ascend310P3"})
    assert isinstance(b, AclBackend) and b.name == "acl"
    assert b.options["precision_mode"] == "force_fp16" and b.options["aipp"] is True
    with pytest.raises(ValueError, match="unknown options"):
        AclBackend({"soc": "x"})
    with pytest.raises(ValueError, match="log must be"):
        AclBackend({"log": "loud"})


def test_missing_atc_is_backend_unavailable(tmp_path: Path) -> None:
    spec = zoo.get("scnet50_v1d")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    with pytest.raises(BackendUnavailable) as err:
        backend(atc=str(tmp_path / "nope" / "atc")).compile(src, 1, tmp_path / "out")
    for needle in ("atc", "set_env.sh", "aclruntime", "ais_bench"):
        assert needle in str(err.value)
    if shutil.which("atc") is None:  # the real thing is absent on CI machines
        with pytest.raises(BackendUnavailable, match="set_env.sh"):
            backend().compile(src, 1, tmp_path / "out")


@pytest.mark.skipif(importlib.util.find_spec("aclruntime") is not None, reason="aclruntime is installed")
def test_missing_aclruntime_is_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable) as err:
        backend().load(tmp_path / "scnet50_v1d_bs1.om", 1)
    for needle in ("aclruntime", "ais_bench", "set_env.sh"):
        assert needle in str(err.value)


def _toolkit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    home = tmp_path / "toolkit"
    (home / f"{platform.machine()}-linux").mkdir(parents=True)
    (home / f"{platform.machine()}-linux" / "ascend_toolkit_install.info").write_text(f"version={version}\n")
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))


def test_toolkit_version_mismatch_fails_compile_before_atc(tmp_path: Path, fake_atc: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from omzoo.compile import ToolkitMismatch, compile_model

    _toolkit_home(tmp_path, monkeypatch, "8.0.RC3")
    spec = zoo.get("scnet50_v1d")
    onnx_path = tiny_onnx(tmp_path / "m.onnx", spec)
    params = {"backend": "acl", "acl": {"soc_version": "Ascend310P3"}, "toolkit": {"version": "8.1.RC1"}}
    with pytest.raises(ToolkitMismatch, match=r"'8\.1\.RC1' but this machine has acl 8\.0\.RC3"):
        compile_model(spec.id, 1, tmp_path / "out", params, onnx_path, None)
    assert not fake_atc.exists()  # atc never ran
    params["toolkit"]["version"] = "8.0.RC3"
    meta = compile_model(spec.id, 1, tmp_path / "out", params, onnx_path, None)
    assert meta["toolkit_version"] == "8.0.RC3" and (tmp_path / "out" / meta["artefact"]).is_file()


def test_undetectable_cann_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    if acl.ASCEND_ROOT.exists():
        pytest.skip("a CANN install exists on this machine")
    for var in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable, match="set_env.sh"):
        backend().toolkit_version()


# --------------------------------------------------------------------------- compile through a fake atc


@pytest.mark.parametrize("aipp", [True, False])
@pytest.mark.parametrize("bs", [1, 16])
@pytest.mark.parametrize("model", MODELS)
def test_compile_runs_atc(model: str, bs: int, aipp: bool, tmp_path: Path, fake_atc: Path) -> None:
    pytest.importorskip("omzoo.data.profiles")
    spec = zoo.get(model)
    out = tmp_path / "out"
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    om = backend(aipp=aipp).compile(src, bs, out)
    assert om == (out / f"{model}_bs{bs}.om").resolve() and om.read_bytes() == b"fake-om"

    (call,) = calls(fake_atc)
    argv, args = call["argv"], args_of(call["argv"])
    c, h, w = spec.input_size
    assert args["framework"] == "5" and args["input_format"] == "NCHW"
    assert args["model"] == str((tmp_path / "m.onnx").resolve())
    assert args["output"] == str(out.resolve() / f"{model}_bs{bs}")
    assert args["input_shape"] == f"{spec.input_name}:{bs},{c},{h},{w}"
    assert args["soc_version"] == "Ascend310P3" and args["log"] == "error"
    assert args["precision_mode"] == "force_fp16" and args["output_type"] == "FP32"

    if spec.op_precision:
        assert Path(args["op_precision_mode"]).read_text() == "Gelu=high_performance\n"
    else:
        assert "op_precision_mode" not in args
    assert ("op_precision_mode" in args) == (model == "smlpnet_tiny")

    if aipp:
        cfg = Path(args["insert_op_conf"]).read_text()
        assert args["enable_small_channel"] == "1"
        assert f"src_image_size_w : {w}\n" in cfg and f"src_image_size_h : {h}\n" in cfg
        assert ("min_chn_0 : 123.675" in cfg) == (spec.profile in ("imagenet", "smlp"))
        assert "var_reci_chn_0 : 0.00392156862745098" in cfg or "0.0171247538316637" in cfg
    else:
        assert not any(a.startswith(("--insert_op_conf", "--enable_small_channel")) for a in argv)

    # atc ran in a scratch directory, logs and side files stay out of the artefact directory
    assert Path(call["cwd"]).resolve() != out.resolve() and not Path(call["cwd"]).exists()
    assert not (out / "fusion_result.json").exists()
    assert call["plog"] == str(out.resolve() / f"{model}_bs{bs}.logs")
    assert "ATC run success" in (out / f"{model}_bs{bs}.atc.stdout").read_text()
    info = json.loads((out / f"{model}_bs{bs}.atc.json").read_text())
    assert info["argv"] == argv and info["ok"] and info["returncode"] == 0 and info["error_code"] == ""


def test_compile_detects_soc_with_npu_smi(tmp_path: Path, fake_atc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_exe(fake_atc.parent / "bin" / "npu-smi", f"print({NPU_SMI_910B!r})")
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    AclBackend({"aipp": False}).compile(src, 4, tmp_path / "out")
    assert args_of(calls(fake_atc)[0]["argv"])["soc_version"] == "Ascend910B3"


def test_compile_without_soc_says_what_to_set(tmp_path: Path, fake_atc: Path) -> None:
    spec = zoo.get("ran92_cifar10")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    with pytest.raises(RuntimeError, match="acl.soc_version"):
        AclBackend({"aipp": False, "soc_version": ""}).compile(src, 4, tmp_path / "out")


def test_failing_atc_reports_exit_code_error_code_and_stderr(tmp_path: Path, fake_atc: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.get("seresnext101_32x4d")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    out = tmp_path / "out"
    out.mkdir()
    (out / "seresnext101_32x4d_bs8.om").write_bytes(b"stale")
    monkeypatch.setenv("FAKE_ATC_MODE", "fail")
    with pytest.raises(AtcError) as err:
        backend(aipp=False).compile(src, 8, out)
    msg = str(err.value)
    assert "exit code 3" in msg and "E10016" in msg and "fake atc: the parser gave up" in msg
    assert err.value.returncode == 3 and err.value.error_code == "E10016"
    assert not (out / "seresnext101_32x4d_bs8.om").exists()  # the stale file cannot pass for a result
    info = json.loads((out / "seresnext101_32x4d_bs8.atc.json").read_text())
    assert not info["ok"] and info["error_code"] == "E10016"
    assert "parser gave up" in (out / "seresnext101_32x4d_bs8.atc.stderr").read_text()


@pytest.mark.parametrize(("mode", "why"), [("quiet", "no 'ATC run success'"), ("no_om", "missing or empty")])
def test_exit_zero_is_not_enough(mode: str, why: str, tmp_path: Path, fake_atc: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.get("tresnet_m")
    src = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "m.onnx", spec))
    monkeypatch.setenv("FAKE_ATC_MODE", mode)
    with pytest.raises(AtcError, match=why):
        backend(aipp=False).compile(src, 1, tmp_path / "out")


def test_onnx_input_checks_before_atc(tmp_path: Path, fake_atc: Path) -> None:
    spec = zoo.get("scnet50_v1d")
    wrong = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "w.onnx", spec, name="images"))
    with pytest.raises(ValueError, match="registry says 'input'"):
        backend(aipp=False).compile(wrong, 1, tmp_path / "out")
    u8 = CompileSource(spec=spec, onnx=tiny_onnx(tmp_path / "u8.onnx", spec, elem=TensorProto.UINT8))
    with pytest.raises(ValueError, match="normalise again"):
        backend(aipp=True).compile(u8, 1, tmp_path / "out")
    assert not fake_atc.exists()
    assert backend(aipp=False).compile(u8, 1, tmp_path / "out").is_file()  # uint8 graph without AIPP is fine


# --------------------------------------------------------------------------- runtime, against a fake aclruntime

EXEC_MS = 2.5


def fake_aclruntime() -> types.ModuleType:
    """The aclruntime surface of ASCEND.md §2; the fake `.om` is JSON naming its input byte size."""
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
def aclrt(monkeypatch: pytest.MonkeyPatch):
    mod = fake_aclruntime()
    monkeypatch.setitem(sys.modules, "aclruntime", mod)
    yield mod
    acl._FINALIZER.pop("module", None)  # keep the process-exit hook away from the fake


def fake_om(path: Path, realsize: int, shape: list[int]) -> Path:
    path.write_text(json.dumps({"realsize": realsize, "shape": shape}))
    return path


def test_aipp_artefact_takes_nhwc_uint8(tmp_path: Path, aclrt: types.ModuleType) -> None:
    om = fake_om(tmp_path / "ran92_cifar10_bs4.om", 4 * 32 * 32 * 3, [4, 3, 32, 32])
    b = backend(aipp=True, device_id=1, log="warning")
    b.load(om, 4)  # no spec set: the file name says which model
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


def test_float32_artefact_feeds_the_profile_normalisation(tmp_path: Path, aclrt: types.ModuleType) -> None:
    profiles = pytest.importorskip("omzoo.data.profiles")
    om = fake_om(tmp_path / "art.om", 2 * 3 * 224 * 224 * 4, [2, 3, 224, 224])
    b = backend(aipp=False)
    b.spec = zoo.get("scnet50_v1d")  # as omzoo.compile.load_compiled does
    b.load(om, 2)
    assert b.input_spec() == ((2, 3, 224, 224), np.dtype(np.float32))
    pixels = np.random.default_rng(1).integers(0, 256, (2, 3, 224, 224), dtype=np.uint8)
    x = b.feed(pixels)
    np.testing.assert_array_equal(x, profiles.normalize(pixels, profiles.get_profile("imagenet")))
    assert b.run(x).shape == (2, 10)


def test_uint8_graph_without_aipp_stays_nchw(tmp_path: Path, aclrt: types.ModuleType) -> None:
    om = fake_om(tmp_path / "tresnet_m_bs1.om", 3 * 224 * 224, [1, 3, 224, 224])
    b = backend(aipp=False)
    b.load(om, 1)
    pixels = np.zeros((1, 3, 224, 224), np.uint8)
    assert b.input_spec() == ((1, 3, 224, 224), np.dtype(np.uint8))
    assert b.feed(pixels).shape == (1, 3, 224, 224)


def test_dynamic_batch_om_gets_its_gear(tmp_path: Path, aclrt: types.ModuleType) -> None:
    om = fake_om(tmp_path / "ran92_cifar10_bs8.om", 8 * 32 * 32 * 3, [-1, 3, 32, 32])
    b = backend()
    b.load(om, 8)
    assert ("gear", 8) in aclrt.events


def test_size_mismatch_is_caught_at_load(tmp_path: Path, aclrt: types.ModuleType) -> None:
    om = fake_om(tmp_path / "ran92_cifar10_bs4.om", 4 * 3 * 32 * 32 * 4, [4, 3, 32, 32])  # a float32 .om
    with pytest.raises(RuntimeError, match="aipp=True"):
        backend(aipp=True).load(om, 4)
    assert ("free",) in aclrt.events
    with pytest.raises(ValueError, match="<model>_bs<N>"):
        backend().load(fake_om(tmp_path / "weird.om", 1, [1]), 4)


def test_close_and_finalize_once(tmp_path: Path, aclrt: types.ModuleType) -> None:
    om = fake_om(tmp_path / "ran92_cifar10_bs1.om", 32 * 32 * 3, [1, 3, 32, 32])
    first, second = backend(), backend()
    first.load(om, 1)
    second.load(om, 1)
    first.close()
    first.close()
    assert aclrt.events.count(("free",)) == 1
    acl._finalize_acl()  # what atexit runs: free what is still open, then aclFinalize once
    assert aclrt.events[-2:] == [("free",), ("finalize",)]
    acl._finalize_acl()
    assert aclrt.events.count(("finalize",)) == 1


def test_describe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toolkit_home(tmp_path, monkeypatch, "8.0.RC3")
    info = backend(aipp=False, precision_mode="must_keep_origin_dtype").describe()
    assert info["backend"] == "acl" and info["cann_version"] == "8.0.RC3"
    assert info["soc_version"] == "Ascend310P3" and info["aipp"] == "0"
    assert info["precision_mode"] == info["precision"] == "must_keep_origin_dtype"
    assert {"driver_version", "aclruntime_version", "ais_bench_version"} <= set(info)
    assert all(isinstance(v, str) for v in info.values())


def test_load_compiled_opens_an_acl_artefact(tmp_path: Path, aclrt: types.ModuleType) -> None:
    compile_stage = pytest.importorskip("omzoo.compile")
    fake_om(tmp_path / "model.om", 2 * 32 * 32 * 3, [2, 3, 32, 32])
    meta = {"model": "ran92_cifar10", "backend": "acl", "batch_size": 2, "artefact": "model.om",
            "options": {"soc_version": "Ascend310P3", "aipp": True}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    b, _ = compile_stage.load_compiled(tmp_path)
    assert b.input_spec() == ((2, 32, 32, 3), np.dtype(np.uint8))
    b.close()
