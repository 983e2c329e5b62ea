"""What atc is given and what it (and aclruntime) accept: the argv, the AIPP config, the op-precision ini, the
error codes, and the path and permission rules checked before a path reaches either (the README's Ascend section)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from omzoo.core import params, paths
from omzoo.core.recipe import Recipe

ATC_SUCCESS = "ATC run success"
#: CANN error codes in atc's output: E19010, EZ3003, EC0010, EZ9999
ERROR_CODE = re.compile(r"\bE[0-9A-Z]\d{4}\b")
#: the characters atc (after realpath) and aclruntime accept in a path
SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]")
#: aclruntime refuses an .om whose path has more than this many '/'
MAX_SLASHES = 32

#: the precisions of the axis (params.PRECISIONS) atc compiles, as (--precision_mode, --precision_mode_v2) values
#: (docs/ascend.md §5.2). int8 is an AMCT deploy model whose quantized layers run int8; its other layers get atc's
#: default, fp16. bf16 is not offered: its modes exist on Atlas A2 only.
PRECISION_MODES: dict[str, tuple[str, str]] = {
    "fp32": ("must_keep_origin_dtype", "origin"),
    "fp16": ("force_fp16", "fp16"),
    "mixed": ("allow_mix_precision", "mixed_float16"),
    "int8": ("force_fp16", "fp16"),
}
#: the first CANN (major, minor) given --precision_mode_v2; older ones get --precision_mode
PRECISION_MODE_V2_FROM = (8, 5)


class AtcError(RuntimeError):
    """atc did not produce a usable .om; carries what the compile stage records."""

    def __init__(self, message: str, returncode: int, error_code: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.error_code = error_code


def om_path(out_dir: Path, model: str, batch_size: int, precision: str = paths.REFERENCE) -> Path:
    """The .om compile writes for one (model, batch size, precision) in `out_dir`, named by the point's key
    (`ran92_cifar10-8-fp16.om`); its side files (argv record, atc output, AIPP config, AMCT folder) share that
    stem."""
    return Path(out_dir) / f"{paths.key(model, batch_size, precision)}.om"


def _fmt(value: float) -> str:
    """15 significant digits: the form the CANN AIPP examples print (123.675, 0.0171247538316637)."""
    return f"{value:.15g}"


def aipp_config(recipe: Recipe, height: int, width: int) -> str:
    """Static AIPP for RGB uint8 HWC input that reproduces the pixel recipe's `(x/255 - mean)/std`.

    `out = (in - mean_chn - min_chn) * var_reci_chn`, so min = 255·mean and var_reci = 1/(255·std);
    fractional means go in the float `min_chn_*` fields (`mean_chn_*` is int32). Fields at their
    defaults (min 0, var_reci 1) are left out, as in CANN's examples. No mean/std means /255 only.
    """
    mean = tuple(recipe.mean) if recipe.mean is not None else (0.0, 0.0, 0.0)
    std = tuple(recipe.std) if recipe.std is not None else (1.0, 1.0, 1.0)
    if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
        raise ValueError(f"AIPP needs 3 channel means and positive stds, got mean={mean} std={std}")
    lines = [
        "aipp_op {",
        "    aipp_mode : static",
        "    related_input_rank : 0",
        "    input_format : RGB888_U8",
        f"    src_image_size_w : {int(width)}",
        f"    src_image_size_h : {int(height)}",
        "    csc_switch : false",
        "    rbuv_swap_switch : false",
    ]
    lines += [f"    min_chn_{c} : {_fmt(255.0 * m)}" for c, m in enumerate(mean) if m != 0]
    lines += [f"    var_reci_chn_{c} : {_fmt(1.0 / (255.0 * s))}" for c, s in enumerate(std) if 255.0 * s != 1.0]
    lines.append("}")
    return "\n".join(lines) + "\n"


def op_precision_ini(modes: Mapping[str, str]) -> str:
    """`OpType=mode` lines for --op_precision_mode; no comments, since atc may not accept them."""
    for op, mode in modes.items():
        if not op or "=" in op or "\n" in op or not mode or "\n" in mode:
            raise ValueError(f"bad op_precision entry {op!r}: {mode!r}")
    return "".join(f"{op}={mode}\n" for op, mode in modes.items())


def atc_command(
    *,
    onnx: Path,
    output_prefix: Path,
    input_name: str,
    batch_size: int,
    input_size: Sequence[int],
    soc_version: str,
    atc: str = "atc",
    log: str = "error",
    precision: str = "",
    op_precision: Path | None = None,
    aipp: Path | None = None,
    output_type: str = "",
) -> list[str]:
    """The static-shape atc argv of the Ascend ModelZoo guides; `.om` is appended to the prefix. `precision`: the
    whole precision flag (precision_flag()), "" for none."""
    params.batch_size(batch_size, "batch size")
    c, h, w = input_size
    argv = [
        atc,
        "--framework=5",
        f"--model={onnx}",
        f"--output={output_prefix}",
        "--input_format=NCHW",
        f"--input_shape={input_name}:{batch_size},{c},{h},{w}",
        f"--soc_version={soc_version}",
        f"--log={log}",
    ]
    if precision:
        if not precision.startswith(("--precision_mode=", "--precision_mode_v2=")):
            raise ValueError(f"atc precision flag must be --precision_mode=<mode> or --precision_mode_v2=<mode>, "
                             f"got {precision!r}")
        argv.append(precision)
    if op_precision is not None:
        argv.append(f"--op_precision_mode={op_precision}")
    if aipp is not None:
        argv += [f"--insert_op_conf={aipp}", "--enable_small_channel=1"]
    if output_type:
        argv.append(f"--output_type={output_type}")
    return argv


def cann_release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a CANN version (`8.0.RC3` -> (8, 0), `8.5.0` -> (8, 5)); None when it names none."""
    found = re.match(r"\s*(\d+)\.(\d+)", version)
    return (int(found.group(1)), int(found.group(2))) if found else None


def precision_flag(precision: str, cann_version: str) -> str:
    """atc's flag for `precision` on this CANN: `--precision_mode=<mode>` up to 8.x before 8.5, then
    `--precision_mode_v2=<mode>` (8.5, 9.x), the one the docs prefer; the two are mutually exclusive.
    ValueError for a precision atc is not given here, or a version without a number."""
    if precision not in PRECISION_MODES:
        raise ValueError(f"acl cannot compile precision {precision!r}; it compiles {', '.join(PRECISION_MODES)}")
    release = cann_release(cann_version)
    if release is None:
        raise ValueError(f"acl: CANN version {cann_version!r} has no major.minor number, so the precision flag "
                         "(--precision_mode or --precision_mode_v2) cannot be chosen")
    old, v2 = PRECISION_MODES[precision]
    return f"--precision_mode_v2={v2}" if release >= PRECISION_MODE_V2_FROM else f"--precision_mode={old}"


def error_code(text: str) -> str:
    """The first CANN error code in atc's output ("" when none)."""
    found = ERROR_CODE.search(text)
    return found.group(0) if found else ""


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- path and permission rules


_RULE = "atc and aclruntime accept only [A-Za-z0-9_./-] (move the repository or data to such a path)"


def _unsafe(*texts: str) -> str:
    return " ".join(repr(ch) for ch in sorted({ch for text in texts for ch in text if not SAFE_PATH.fullmatch(ch)}))


def path_problems(path: Path) -> list[str]:
    """Why atc would refuse this path: characters outside [A-Za-z0-9_./-] once resolved (spaces, '+', '@', '~')."""
    real = os.path.realpath(path)
    bad = _unsafe(real)
    return [f"resolves to {real!r}, which holds {bad}: {_RULE}"] if bad else []


def om_problems(path: Path) -> list[str]:
    """Why aclruntime would refuse to open this .om: characters, another suffix, more than 32 '/', a symlink,
    group/other write permission. The checks of the file itself apply once it exists."""
    absolute = os.path.abspath(path)
    bad = _unsafe(absolute, os.path.realpath(path))
    problems = [f"holds {bad} (as given or resolved): {_RULE}"] if bad else []
    if not absolute.endswith(".om"):
        problems.append("does not end in .om (aclruntime checks the suffix)")
    if absolute.count("/") > MAX_SLASHES:
        problems.append(f"has {absolute.count('/')} '/' in its absolute path; aclruntime allows {MAX_SLASHES} "
                        "(use a shallower working directory)")
    if os.path.islink(absolute):
        problems.append("is a symlink, which aclruntime refuses (DVC's cache.type symlink makes these: use "
                        "`dvc config cache.type copy` or hardlink, then `dvc checkout --relink`)")
    elif os.path.exists(absolute):
        mode = stat.S_IMODE(os.stat(absolute).st_mode)
        if mode & 0o022:
            problems.append(f"is writable by group or others (mode {mode:04o}), which aclruntime refuses: "
                            f"chmod go-w {absolute}")
    return problems


def check_paths(paths: Mapping[str, Path], om: Path) -> None:
    """Raise ValueError naming every path atc or aclruntime would refuse, and which rule it breaks."""
    problems = [f"{role} {path}: {p}" for role, path in paths.items() for p in path_problems(path)]
    problems += [f"artefact {om}: {p}" for p in om_problems(om)]
    if problems:
        raise ValueError("acl: " + "\n  ".join(problems))


def make_private(om: Path) -> None:
    """Drop group/other write permission from the written .om, so aclruntime opens it wherever it is copied."""
    mode = stat.S_IMODE(om.stat().st_mode)
    if mode & 0o022:
        om.chmod(mode & ~0o022)
