"""backends/ascend/atc.py: the atc argv, AIPP and op-precision texts against CANN's examples, CANN error codes, the
.om's name, and the path and permission rules atc and aclruntime apply (the README's Ascend section)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from omzoo.backends.ascend.atc import (
    MAX_SLASHES,
    aipp_config,
    atc_command,
    cann_release,
    check_paths,
    error_code,
    make_private,
    om_path,
    om_problems,
    op_precision_ini,
    path_problems,
    precision_flag,
)
from omzoo.core import paths, zoo

IMAGENET = SimpleNamespace(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
NO_NORM = SimpleNamespace(mean=None, std=None)

# CANN's AIPP example for the ImageNet mean/std, verbatim
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


def test_atc_command_matches_the_guide_form() -> None:
    argv = atc_command(onnx=Path("/m/scnet.onnx"), output_prefix=Path("/o/scnet50_v1d_bs4"), input_name="input",
                       batch_size=4, input_size=(3, 224, 224), soc_version="Ascend310P3")
    assert argv == ["atc", "--framework=5", "--model=/m/scnet.onnx", "--output=/o/scnet50_v1d_bs4",
                    "--input_format=NCHW", "--input_shape=input:4,3,224,224", "--soc_version=Ascend310P3",
                    "--log=error"]
    full = atc_command(onnx=Path("m.onnx"), output_prefix=Path("o"), input_name="image", batch_size=1,
                       input_size=(3, 32, 32), soc_version="Ascend310P3", atc="/opt/atc", log="debug",
                       precision="--precision_mode=must_keep_origin_dtype", op_precision=Path("p.ini"),
                       aipp=Path("a.cfg"),
                       output_type="FP32")
    assert full[0] == "/opt/atc"
    assert full[5:] == ["--input_shape=image:1,3,32,32", "--soc_version=Ascend310P3", "--log=debug",
                        "--precision_mode=must_keep_origin_dtype", "--op_precision_mode=p.ini",
                        "--insert_op_conf=a.cfg", "--enable_small_channel=1", "--output_type=FP32"]
    with pytest.raises(ValueError):
        atc_command(onnx=Path("m"), output_prefix=Path("o"), input_name="x", batch_size=0,
                    input_size=(3, 8, 8), soc_version="s")
    with pytest.raises(ValueError, match="precision flag"):
        atc_command(onnx=Path("m"), output_prefix=Path("o"), input_name="x", batch_size=1,
                    input_size=(3, 8, 8), soc_version="s", precision="force_fp16")


@pytest.mark.parametrize(("precision", "old", "v2"), [
    ("fp32", "must_keep_origin_dtype", "origin"),
    ("fp16", "force_fp16", "fp16"),
    ("mixed", "allow_mix_precision", "mixed_float16"),
    ("int8", "force_fp16", "fp16"),  # the AMCT deploy model: quantized layers int8, the rest atc's default
])
def test_precision_flag_per_cann_generation(precision: str, old: str, v2: str) -> None:
    """--precision_mode up to CANN 8.3, --precision_mode_v2 from 8.5 (and 9.x); never both."""
    for version in ("7.0.0", "8.0.RC3", "8.1.RC1", "8.3.RC1"):
        assert precision_flag(precision, version) == f"--precision_mode={old}", version
    for version in ("8.5.0", "8.5.RC1", "9.0.0", "10.1.RC1"):
        assert precision_flag(precision, version) == f"--precision_mode_v2={v2}", version
    assert cann_release("8.0.RC3") == (8, 0) and cann_release("unknown") is None


def test_precision_flag_refuses_what_atc_is_not_given() -> None:
    with pytest.raises(ValueError, match="cannot compile precision 'bf16'"):
        precision_flag("bf16", "8.0.RC3")
    with pytest.raises(ValueError, match="has no major.minor"):
        precision_flag("fp16", "unknown")


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


def test_aipp_config_matches_the_real_recipes() -> None:
    assert aipp_config(zoo.get("scnet50_v1d").recipe, 224, 224) == AIPP_IMAGENET_224
    assert aipp_config(zoo.get("tresnet_m").recipe, 224, 224) == AIPP_UNIT_224


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


@pytest.mark.parametrize("code", ["E10016", "E19010", "E19999", "EZ3003", "EC0010", "EZ9999"])
def test_error_codes(code: str) -> None:
    assert error_code(f"ATC run failed\n[ERROR] {code}: something went wrong\nE99999 later") == code


def test_error_code_ignores_lookalikes() -> None:
    assert error_code("EXAMPLE E1234 E123456 xE10016 model_E10016x ok") == ""


# --------------------------------------------------------------------------- path and permission rules


@pytest.mark.parametrize("name", ["my model", "a+b", "user@host", "~backup", "ünï"])
def test_unsafe_characters_are_named(name: str, tmp_path: Path) -> None:
    (problem,) = path_problems(tmp_path / name / "m.onnx")
    assert "[A-Za-z0-9_./-]" in problem
    assert all(repr(c) in problem for c in set(name) if not (c.isascii() and (c.isalnum() or c in "_.-")))


def test_paths_are_judged_after_realpath(tmp_path: Path) -> None:
    target = tmp_path / "with space"
    target.mkdir()
    (tmp_path / "clean").symlink_to(target)
    assert path_problems(tmp_path / "clean" / "m.onnx")  # fine as written, not once resolved
    assert path_problems(tmp_path / "plain" / "m.onnx") == []


def test_om_rules(tmp_path: Path) -> None:
    om = tmp_path / "m_bs1.om"
    assert om_problems(om) == []  # not written yet: only the path rules apply
    om.write_bytes(b"om")
    om.chmod(0o600)
    assert om_problems(om) == []
    om.chmod(0o664)
    (problem,) = om_problems(om)
    assert "group or others (mode 0664)" in problem and "chmod go-w" in problem
    om.chmod(0o644)
    link = tmp_path / "link_bs1.om"
    link.symlink_to(om)
    assert any("symlink" in p and "cache.type" in p for p in om_problems(link))
    assert any("end in .om" in p for p in om_problems(tmp_path / "m.bin"))
    deep = Path("/" + "/".join(["d"] * MAX_SLASHES) + "/m.om")
    assert deep.as_posix().count("/") == MAX_SLASHES + 1
    assert any(f"{MAX_SLASHES + 1} '/'" in p for p in om_problems(deep))
    assert not any("'/'" in p for p in om_problems(Path("/" + "/".join(["d"] * (MAX_SLASHES - 1)) + "/m.om")))


def test_check_paths_names_each_path_and_its_rule(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        check_paths({"ONNX": tmp_path / "a b.onnx", "AIPP config": tmp_path / "x+y.cfg"}, tmp_path / "o@1.om")
    msg = str(err.value)
    assert "ONNX" in msg and "' '" in msg and "AIPP config" in msg and "'+'" in msg
    assert "artefact" in msg and "'@'" in msg
    check_paths({"ONNX": tmp_path / "ok.onnx"}, tmp_path / "ok.om")


def test_make_private(tmp_path: Path) -> None:
    om = tmp_path / "m.om"
    om.write_bytes(b"om")
    om.chmod(0o666)
    make_private(om)
    assert os.stat(om).st_mode & 0o777 == 0o644
    assert om_problems(om) == []


def test_the_om_is_named_by_the_points_key(tmp_path: Path) -> None:
    """One spelling of (model, batch size, precision) everywhere: the .om's stem is core.paths' key, read back by
    parse_key."""
    assert om_path(tmp_path, "ran92_cifar10", 8) == tmp_path / "ran92_cifar10-8-fp32.om"
    assert om_path(tmp_path, "ran92_cifar10", 8, "int8") == tmp_path / "ran92_cifar10-8-int8.om"
    assert paths.parse_key(om_path(tmp_path, "tresnet_m", 16, "mixed").stem) == ("tresnet_m", 16, "mixed")
    with pytest.raises(ValueError, match="must not contain '-'"):
        om_path(tmp_path, "tres-net", 1)
