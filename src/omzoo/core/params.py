"""params.yaml: read once per command, validated as a whole, then each stage reads its own sections from here.

The rule: dvc.yaml passes paths on the command line; every tunable comes from params.yaml through this module
(and dvc.yaml lists the sections a stage reads, so editing `bench` never re-runs `compile`). By hand, `-S KEY=VALUE`
(the syntax of `dvc exp run -S`) changes a key for one command, over the file, and is checked exactly like the
file. The section dataclasses below are the one home of every default; params.yaml repeats them
(tests/test_params.py checks that the two agree). A mistake fails on load with one line naming the key: a key given
twice (ruamel.yaml, the loader DVC reads params.yaml with, refuses duplicates), an unknown, misspelt or non-ASCII
section or key, a value of the wrong type or outside its range (each section a dataclass validated by pydantic in
strict mode: no "5" for 5, no string for a list), a model id or dataset key that is not a plain identifier
(dvc.yaml pastes them into shell commands), an unknown model, a model without a shard set, `infer.batch_size`
outside `batch_sizes`, a `toolkit.version` that YAML read as a number.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import copy
import dataclasses
import functools
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode

from omzoo.core import io, paths, zoo
from omzoo.core.errors import shown

T = TypeVar("T")

#: an int field that must be at least 1, one that must not be negative, a probability strictly inside (0, 1)
Positive = Annotated[int, pydantic.Field(ge=1)]
Count = Annotated[int, pydantic.Field(ge=0)]
Seconds = Annotated[float, pydantic.Field(ge=0)]
Level = Annotated[float, pydantic.Field(gt=0, lt=1)]
#: the most a params file may weigh (it is read whole, and a FIFO or device given as --params is refused)
MAX_PARAMS_BYTES = 1 << 20


class ParamsError(ValueError):
    """params.yaml (or a -S) is wrong; the message names the file and the key."""


class SizeError(ValueError, argparse.ArgumentTypeError):
    """Not a positive integer; as a flag's type, argparse prints this message rather than "invalid value"."""


# ------------------------------------------------------------------------------------------------------ sizes


def decimal(text: str) -> int | None:
    """The one reading of an integer typed as text (a flag, a labels file): ASCII digits with an optional minus, so
    `1_0` and `٣` (which int() reads as 10 and 3) are not numbers; None when `text` is not one."""
    return int(text) if re.fullmatch(r"-?[0-9]+", text.strip(), re.ASCII) else None


def positive_int(value: int | str, what: str = "value") -> int:
    """The one rule for a size (batch size, shard size, rounds): an integer >= 1, given as a number (a bool is
    none) or as decimal text (a flag's value). Anything else is a ValueError naming `what`."""
    number = decimal(value) if isinstance(value, str) and decimal(value) is not None else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise SizeError(f"{what} must be a positive integer, got {value!r}")
    return number


#: the largest batch size a flag or params.yaml may ask for: input and padding buffers are allocated per batch, so a
#: typo such as `--bs 1000000000` is one line here, not a 2.8 TiB allocation (the guides measure up to 64)
MAX_BATCH_SIZE = 4096


def batch_size(value: int | str, what: str = "batch size") -> int:
    """The one rule for a batch size: a positive integer (positive_int) of at most MAX_BATCH_SIZE."""
    bs = positive_int(value, what)
    if bs > MAX_BATCH_SIZE:
        raise SizeError(f"{what} must be at most {MAX_BATCH_SIZE}, got {value!r}")
    return bs


def batch_size_list(text: str, what: str = "batch sizes") -> list[int]:
    """`32` or `1,8,32` typed by hand (spaces allowed; a size given twice counts once), in the order given."""
    try:
        return list(dict.fromkeys(batch_size(part, what) for part in text.split(",")))
    except ValueError:
        raise SizeError(f"{what} must be a positive integer up to {MAX_BATCH_SIZE} or a list like 1,8,32, got "
                        f"{text!r}") from None


def _is_size(value: Any) -> bool:
    """A positive integer as YAML gives one: a number, never the text "8"."""
    if isinstance(value, str):
        return False
    try:
        positive_int(value)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------- sections and their defaults


@dataclass(frozen=True)
class WeightsConfig:
    """`weights:`."""

    seed: Count = 0  # seed of the random weights (used only where no checkpoint is configured)
    #: sha256 of published files the user trusts to run code (only these may be fully unpickled)
    trusted_checkpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PreprocessConfig:
    """`preprocess:`."""

    workers: Count = 0  # decoder processes, 0 = one per core; speed only, so dvc.yaml does not track it
    skip_bad: bool = False  # skip undecodable/unlabelled files, list them in the manifest, count them
    shard_size: Positive = 2048  # images per shard file


@dataclass(frozen=True)
class ExportConfig:
    """`export:`."""

    opset: Annotated[int, pydantic.Field(ge=7, le=25)] = 11  # what every Ascend toolchain of the guides wants
    #: uint8: normalisation inside the graph (ORT, torch); float32 for acl with AIPP
    input_dtype: Literal["uint8", "float32"] = "uint8"


@dataclass(frozen=True)
class BenchConfig:
    """`bench:`. These are CPU values that keep `make repro` short; on a device raise min_s (10) and min_iters
    (100) in params.yaml."""

    warmup_iters: Count = 5
    warmup_s: Seconds = 0.5
    min_iters: Positive = 5  # per round
    min_s: Seconds = 1.0  # per round
    max_s: Annotated[float, pydantic.Field(gt=0)] = 60.0  # per round
    seed: Count = 0
    rounds: Positive = 10  # R = 10: [x(2), x(9)] covers the median with 97.9 %, so one outlying round cannot widen it
    max_retries: Count = 6  # contended rounds measured again, at most
    retry_budget_s: Seconds = 120.0  # seconds spent measuring again, at most
    # Others' CPU above this many cores flags a round: a twentieth of one core (a tenth is the usual rule; on a
    # 2-core machine idle rounds measured 0.00-0.02 and rounds that overlapped a load only briefly 0.1). Counted
    # in cores, not as a share of the machine, because a single competing thread hurts a run that uses every core
    # (ORT with threads = cores ran at half the speed of one thread under a competing job: its spinning workers
    # lose their slices), however many cores there are. Idle Linux background (kernel threads, the waiting
    # `dvc repro` parent) stays well below it.
    contention_cores: Seconds = 0.05
    level: Level = 0.95  # confidence of the intervals


#: every precision `precisions:` may list. fp32 is the reference: the others are measured by their agreement with it.
#: fp16: half precision (acl force_fp16); bf16: bfloat16; mixed: the backend's mixed fp16/fp32 (acl
#: allow_mix_precision); int8: calibrated static quantization. Which backend runs which: its PRECISIONS.
Precision = Literal["fp32", "fp16", "bf16", "mixed", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
REFERENCE = "fp32"


@dataclass(frozen=True)
class PrecisionConfig:
    """`precision:` how the precisions other than fp32 are made: int8's calibration and quantization (the
    calibrate stage reads this section and hands it to compile inside the calibration folder)."""

    calibration_images: Positive = 32  # images of the model's own shards, evenly spaced over the set
    calibration_method: Literal["MinMax", "Entropy", "Percentile"] = "MinMax"
    quant_format: Literal["QDQ", "QOperator"] = "QDQ"  # QuantizeLinear/DequantizeLinear pairs, or integer operators
    activations: Literal["int8", "uint8"] = "int8"
    weights: Literal["int8", "uint8"] = "int8"
    per_channel: bool = True  # one scale per output channel of each weight
    reduce_range: Literal["auto"] | bool = "auto"  # 7-bit weights; auto: where the CPU lacks VNNI (u8s8 saturation)


@dataclass(frozen=True)
class ReportConfig:
    """`report:`."""

    #: platforms whose published figures the report shows next to ours (YAML reads a bare 310 as a number)
    platforms: list[str] = field(default_factory=lambda: ["310P", "310", "T4"])


@dataclass(frozen=True)
class AbtestConfig:
    """`abtest:` (read from BASE, the reference: a HEAD may only tighten it). Pairs of rounds, one per side in a
    seeded random order; the pair ratios' median and its sign-test interval decide (README, Comparing toolkits)."""

    min_effect: Seconds = 0.01  # the HEAD/BASE interval must lie this far beyond 1 for a change to count
    level: Level = 0.95  # confidence of the intervals, over all the looks of the stopping rule together
    min_pairs: Positive = 10  # pairs before the first look
    look_every: Positive = 5  # pairs between two looks at the interval
    max_pairs: Positive = 40  # per (model, bs): the budget in pairs
    max_s: Annotated[float, pydantic.Field(gt=0)] = 300.0  # per (model, bs): the budget in seconds of measuring
    switch_warmup_iters: Count = 3  # untimed iterations before every round (the other side ran in between)
    max_repeats: Count = 10  # per (model, bs): pairs measured again because load began or ended between the two rounds
    seed: Count = 0  # the order of the two rounds in each pair


@dataclass(frozen=True)
class ToolkitConfig:
    """`toolkit:`."""

    version: str = ""  # the runtime version this branch measures ("" = whatever is installed)


@dataclass(frozen=True)
class InferConfig:
    """`infer:`."""

    #: the compiled batch size infer runs; None: the first of batch_sizes
    batch_size: Annotated[int, pydantic.Field(ge=1, le=MAX_BATCH_SIZE)] | None = None


@dataclass(frozen=True)
class CompareConfig:
    """params.yaml `compare:` (BASE's, tightened by HEAD's)."""

    min_effect: Seconds = 0.03  # the ratio interval must lie this far beyond 1 to count (below it: drift)
    drift: Seconds = 0.08  # between two runs of one commit on one host; the interval is widened by it on both sides
    max_accuracy_drop: Seconds = 0.0  # top-1 points HEAD may lose before the gate fails; 0: one image counts
    min_rounds: Count = 5  # fewer kept rounds on either side: inconclusive
    show_images: Count = 10  # changed images listed by name, per model


# Each backend's section: its schema lives here, below the backends, so that every command checks every backend's
# section on load (not only the backend it runs); the backend module names it as its Options.

#: the choices of `onnxruntime.level` and `compile_level` (the keys of omzoo.backends.onnxruntime's _LEVELS)
OrtLevel = Literal["disable", "basic", "extended", "all"]


@dataclass(frozen=True)
class OrtOptions:
    """`onnxruntime:` (the backend's options)."""

    providers: Literal["auto"] | list[str] = "auto"  # TensorRT/CUDA when the build has them, then CPU; or a list
    threads: Count = 0  # 0 = one per core
    level: OrtLevel = "all"  # graph optimisation at load: disable, basic, extended, all
    compile_level: OrtLevel = "extended"  # the optimisations saved in the artefact, portable across machines


@dataclass(frozen=True)
class TorchOptions:
    """`torch:` (the backend's options; what each does: omzoo.backends.torch)."""

    device: str = "auto"  # cuda when available, else cpu
    channels_last: bool = True
    compile: bool = False  # torch.compile
    compile_mode: str = "default"
    freezing: bool = True
    dynamic: bool = True
    cuda_graphs: bool | Literal["auto"] = "auto"  # "auto": on for CUDA
    tf32: bool = False
    threads: Count = 0  # 0 = torch's default


@dataclass(frozen=True)
class AclOptions:
    """`acl:` (the Ascend backend's options)."""

    cann_home: str = ""  # "" = $ASCEND_TOOLKIT_HOME, else /usr/local/Ascend/ascend-toolkit/latest
    python: str = ""  # the Python atc's operator compiler runs; "" = python3 on the CANN environment's PATH
    soc_version: str = ""  # "" = "Ascend" + the npu-smi Name column
    aipp: bool = True  # uint8 input, mean/std in AIPP; needs export.input_dtype float32
    device_id: Count = 0
    log: str = "error"
    atc: str = "atc"
    output_type: str = "FP32"  # logits stay fp32 whatever the last op computes in; "" omits the flag


@dataclass(frozen=True)
class DatasetEntry:
    """`datasets.<pixels>:`."""

    data: Annotated[str, pydantic.Field(min_length=1)]
    labels: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """`models.<id>:`."""

    checkpoint: str = ""  # "" = seeded random weights
    pixels: str = ""
    options: dict[str, Any] | None = None  # checked by the registry (ModelSpec.with_options)


#: the sections with a schema: their keys, types and defaults (checked whenever params are loaded)
SECTIONS: dict[str, type] = {"toolkit": ToolkitConfig, "weights": WeightsConfig, "preprocess": PreprocessConfig,
                             "export": ExportConfig, "bench": BenchConfig, "compare": CompareConfig,
                             "report": ReportConfig, "abtest": AbtestConfig, "precision": PrecisionConfig}
#: each backend's section and its schema (the backend's Options), checked whenever params are loaded, whichever
#: backend runs; a backend not listed (a test's) has its section checked where it is made (omzoo.backends.base)
BACKEND_SECTIONS: dict[str, type] = {"onnxruntime": OrtOptions, "torch": TorchOptions, "acl": AclOptions}
#: backend options that are gone, dotted, and where their setting went: a file still giving one fails saying so
MOVED: dict[str, str] = {
    "acl.precision_mode": "the precision is the pipeline's `precisions:` list now (acl runs fp32, fp16, mixed and "
                          "int8; atc's flag is chosen per CANN version)",
    "torch.precision": "the precision is the pipeline's `precisions:` list now (torch runs fp32, fp16 on CUDA only, "
                       "and bf16)"}
#: every top-level key a params file may have: a misspelt one (`bnech:`) is an error, never silently ignored.
#: The backends' sections are their names (tests/test_params.py checks this list against the backend registry); the
#: configured backend's section is known whatever its name (a new backend is one module and one registry line).
TOP_LEVEL: frozenset[str] = frozenset({*SECTIONS, *BACKEND_SECTIONS, "datasets", "models", "batch_sizes", "precisions",
                                       "infer", "backend"})

#: Renamed keys, old dotted key -> new one (`*` stands for any one key, such as a model id). For one release a
#: file or a -S that still uses the old name works, with a warning on stderr naming the file and both keys.
RENAMED: dict[str, str] = {"shards": "datasets", "models.*.shards": "models.*.pixels"}


# ------------------------------------------------------------------------------------------------------ params


@dataclass(frozen=True)
class Params:
    raw: dict[str, Any]
    path: Path
    text: str = ""  # the file as read (what `omzoo sweep` edits); "" for built-in defaults and other revisions
    overrides: tuple[str, ...] = ()  # the -S KEY=VALUE applied over the file

    @property
    def where(self) -> str:
        """How messages name these params: the file, and the -S applied over it."""
        return " -S ".join([f"{self.path}" + (" with" if self.overrides else ""), *self.overrides])

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name) or {}
        if not isinstance(value, Mapping):
            raise ParamsError(f"{self.where}: `{name}` must be a mapping, got {type(value).__name__}")
        return dict(value)

    def typed(self, cls: type[T], name: str) -> T:
        """Section `name` as the dataclass `cls`: unknown keys and wrongly typed values fail by name."""
        return typed(cls, self.section(name), f"{self.where}: {name}")

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return {m: dict(e or {}) for m, e in self.section("models").items()}

    @property
    def batch_sizes(self) -> list[int]:
        return list(self.raw.get("batch_sizes") or [])

    @property
    def precisions(self) -> list[str]:
        """The precisions compiled, inferred and benchmarked beside the batch sizes; fp32 alone by default."""
        return list(self.raw.get("precisions") or [REFERENCE])

    @property
    def backend(self) -> tuple[str, dict[str, Any]]:
        """The configured backend's name and its own options section (`backend: acl` reads `acl: {...}`)."""
        name = str(self.raw.get("backend", "onnxruntime"))
        return name, self.section(name)

    @property
    def toolkit_version(self) -> str:
        return str(self.section("toolkit").get("version") or "")

    def spec(self, model_id: str) -> zoo.ModelSpec:
        """The registry entry with this branch's `models.<id>.options` applied (export, every backend)."""
        entry = self.models.get(model_id, {})
        return zoo.get(model_id).with_options(entry.get("options"))


def typed(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    """Build dataclass `cls` from `values` with pydantic in strict mode, extra keys forbidden: the annotations
    (int, float, bool, str, list[str], unions, Literal choices, ranges) are the schema, so `min_iters: "5"`,
    `providers: TensorRT` or `level: fastest` fail here naming the key, not a benchmark later."""
    if not isinstance(values, Mapping):
        raise ParamsError(f"{where} must be a mapping of keys, got {type(values).__name__} {shown(repr(values))}")
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in values if k not in fields)
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {shown(repr(unknown))}; known: {sorted(fields)}")
    try:
        text = json.dumps(dict(values), default=str, allow_nan=False)
        return _adapter(cls).validate_json(text, strict=True)
    except ValueError as e:  # pydantic.ValidationError is one; so is a NaN, which no key takes
        raise ParamsError(_schema_error(e, values, where)) from None


def backend_options(name: str, cls: type | None, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Backend `name`'s section with every default filled in: a moved option fails saying where it went, an unknown
    or mistyped key naming it (`cls` None: a backend without options takes the section as it is)."""
    moved = next((k for k in given if f"{name}.{k}" in MOVED), None)
    if moved is not None:
        raise ParamsError(f"{where}.{moved} has moved: {MOVED[f'{name}.{moved}']}; remove it from the `{name}:` "
                          "section of params.yaml")
    return dataclasses.asdict(typed(cls, given, where)) if cls else dict(given)


@functools.cache
def _options_schema(model_id: str) -> type:
    """`models.<id>.options` as a section: each option the registry declares, typed as its default is (a bool option
    takes true or false, never the string "false", which Python reads as true)."""
    fields = [(name, type(default), field(default_factory=functools.partial(copy.deepcopy, default)))
              for name, default in zoo.get(model_id).options.items()]
    return dataclasses.make_dataclass(f"{model_id}_options", fields, frozen=True)


@functools.cache
def _adapter(cls: type) -> pydantic.TypeAdapter:
    """The validator of dataclass `cls`, built once (pydantic reads a stdlib dataclass's annotations as they are)."""
    return pydantic.TypeAdapter(cls)


#: pydantic's words for a type, as params.yaml spells it
_WANTS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false", "string_type": "a string",
          "list_type": "a list", "dict_type": "a mapping", "missing": "a value (it is required)",
          "int_from_float": "an integer"}


def _schema_error(e: ValueError, values: Mapping[str, Any], where: str) -> str:
    """pydantic's errors as one line per key, the first key only: `<where>.<key>: <what it wants>, got <value>`."""
    if not isinstance(e, pydantic.ValidationError):
        return f"{where}: {e}"
    errors = e.errors(include_url=False)
    key = errors[0]["loc"][0] if errors[0]["loc"] else ""
    wants = list(dict.fromkeys(_WANTS.get(err["type"], err["msg"].replace("Input should be ", ""))
                               for err in errors if (err["loc"][:1] or ("",))[0] == key))
    got = values.get(key, errors[0].get("input")) if isinstance(key, str) else errors[0].get("input")
    name = f"{where}.{key}" if key != "" else where
    return f"{name}: expected {' or '.join(wants)}, got {shown(repr(got))} ({type(got).__name__})"


#: what a model id or a pixel recipe's name may be: dvc.yaml pastes them into the commands a shell runs
IDENTIFIER = re.compile(r"[a-z0-9_]{1,64}")


def _identifier(name: object, where: str) -> None:
    """`name` (a key of `models:` or `datasets:`) is a plain identifier, or a ParamsError showing it, cut short."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ParamsError(f"{where}: the key {shown(repr(name), 60)} is not a plain identifier (at most 64 "
                          "lower-case letters, digits and _): dvc.yaml pastes it into shell commands")


def _check(p: Params) -> None:
    where = p.where
    unknown = sorted(str(k) for k in p.raw if k not in TOP_LEVEL and k != p.raw.get("backend"))
    if unknown:
        raise ParamsError(f"{where}: unknown section(s) {shown(repr(unknown))}; known: {sorted(TOP_LEVEL)}")
    version = p.section("toolkit").get("version", "")
    if not isinstance(version, str):
        raise ParamsError(f"{where}: toolkit.version is the number {version!r}; YAML drops digits from numbers "
                          f"(1.30 reads as 1.3), so quote it: version: \"{version}\"")
    for name, cls in SECTIONS.items():
        if name in p.raw:
            p.typed(cls, name)
    for name, cls in BACKEND_SECTIONS.items():
        if name in p.raw:
            backend_options(name, cls, p.section(name), f"{where}: {name}")
    infer = p.typed(InferConfig, "infer")
    if not isinstance(p.raw.get("backend", ""), str):
        raise ParamsError(f"{where}: backend must be a backend's name, got {shown(repr(p.raw['backend']))}")
    datasets = p.section("datasets")
    for section, names in (("datasets", datasets), ("models", p.section("models"))):
        for name in names:
            _identifier(name, f"{where}: {section}")
    for pixels, entry in datasets.items():
        try:
            zoo.pixel_recipe(pixels)
        except ValueError as e:
            raise ParamsError(f"{where}: datasets.{pixels}: {e}") from None
        typed(DatasetEntry, entry if entry is not None else {}, f"{where}: datasets.{pixels}")
        if not entry.get("labels"):
            raise ParamsError(f"{where}: datasets.{pixels}.labels is empty; name the labels file, or repeat the data "
                              f"folder ({entry['data']}) when the labels live inside it (CIFAR, class sub-folders), "
                              "so that DVC re-runs preprocess when they change")
    for model_id, entry in p.models.items():
        key = f"models.{model_id}"
        try:
            spec = zoo.get(model_id)
        except zoo.UnknownModel as e:
            raise ParamsError(f"{where}: {key}: {e}") from None
        typed(ModelEntry, entry, f"{where}: {key}")
        pixels = entry.get("pixels")
        if not pixels:
            raise ParamsError(f"{where}: {key} has no `pixels:`; {model_id} reads {spec.recipe.pixels!r} pixels")
        if pixels not in datasets:
            raise ParamsError(f"{where}: {key}.pixels is {pixels!r}, which is not under `datasets:` "
                              f"(have: {', '.join(datasets) or 'none'})")
        if pixels != spec.recipe.pixels:
            raise ParamsError(f"{where}: {key}.pixels is {pixels!r} but {model_id} reads {spec.recipe.pixels!r} pixels")
        try:
            spec.with_options(entry.get("options"))
        except ValueError as e:
            raise ParamsError(f"{where}: {key}.options: {e}") from None
        typed(_options_schema(model_id), entry.get("options") or {}, f"{where}: {key}.options")
    if "precisions" in p.raw:
        wanted = p.raw.get("precisions")
        if not isinstance(wanted, list) or not wanted:
            raise ParamsError(f"{where}: precisions must be a non-empty list such as [fp32, int8], "
                              f"got {shown(repr(wanted))}")
        bad = [x for x in wanted if x not in PRECISIONS]
        if bad:
            raise ParamsError(f"{where}: precisions: unknown {shown(repr(bad))}; choose from {list(PRECISIONS)}")
        if len(set(wanted)) != len(wanted):
            raise ParamsError(f"{where}: precisions lists a precision twice: {shown(repr(wanted))}")
        if REFERENCE not in wanted:
            raise ParamsError(f"{where}: precisions must include {REFERENCE}, the reference every other precision's "
                              f"agreement is measured against; got {shown(repr(wanted))}")
    if "batch_sizes" not in p.raw:
        return
    sizes = p.raw.get("batch_sizes")
    if not isinstance(sizes, list) or not sizes:
        raise ParamsError(f"{where}: batch_sizes must be a non-empty list of positive integers, "
                          f"got {shown(repr(sizes))}")
    bad = [b for b in sizes if not _is_size(b) or b > MAX_BATCH_SIZE]
    if bad:
        raise ParamsError(f"{where}: batch_sizes must be positive integers up to {MAX_BATCH_SIZE}; bad: "
                          f"{shown(repr(bad))}")
    if len(set(sizes)) != len(sizes):
        raise ParamsError(f"{where}: batch_sizes lists a size twice: {shown(repr(sizes))}")
    infer_bs = infer.batch_size or sizes[0]
    if infer_bs not in sizes:
        raise ParamsError(f"{where}: infer.batch_size {infer_bs!r} must be one of batch_sizes {shown(repr(sizes))} "
                          "(infer runs that compiled artefact)")


# ------------------------------------------------------------------------------ one command: -S, read once


@dataclass
class _Command:
    overrides: tuple[str, ...]
    loaded: dict[Path, Params] = field(default_factory=dict)
    warned: set[str] = field(default_factory=set)


_COMMAND: contextvars.ContextVar[_Command | None] = contextvars.ContextVar("omzoo_params_command", default=None)


@contextlib.contextmanager
def command(overrides: Sequence[str] = ()) -> Iterator[None]:
    """One omzoo command (the CLI runs every verb inside one): each params file it loads is read and validated
    once, with the command's -S KEY=VALUE applied over it."""
    token = _COMMAND.set(_Command(tuple(overrides)))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def _warn(line: str) -> None:
    cmd = _COMMAND.get()
    if cmd is None or line not in cmd.warned:
        print(f"omzoo: warning: {line}", file=sys.stderr)
    if cmd is not None:
        cmd.warned.add(line)


def _renamed_key(parts: list[str], where: str) -> list[str]:
    """A dotted key under its current name (a warning when it used an old one)."""
    for old, new in RENAMED.items():
        pattern = old.split(".")
        head = parts[: len(pattern)]
        if len(head) == len(pattern) and all(p in ("*", k) for p, k in zip(pattern, head, strict=True)):
            wild = iter(k for p, k in zip(pattern, head, strict=True) if p == "*")
            current = [next(wild) if p == "*" else p for p in new.split(".")] + parts[len(pattern):]
            _warn(f"{where}: `{'.'.join(parts)}` is now `{'.'.join(current)}`; rename it (omzoo reads the old "
                  "name for one more release, dvc.yaml needs the new one now)")
            return current
    return parts


def _renamed(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """`raw` with every old key of RENAMED moved to its new name; both names at once is an error."""
    for old in RENAMED:
        for found in list(_find(raw, old.split("."))):
            current = _renamed_key(list(found), where)
            parent = _parent(raw, current, create=True, where=where)
            if current[-1] in parent:
                raise ParamsError(f"{where}: both `{'.'.join(found)}` and `{'.'.join(current)}`; "
                                  f"`{'.'.join(found)}` is the old name, keep only `{'.'.join(current)}`")
            parent[current[-1]] = _parent(raw, list(found), create=False, where=where).pop(found[-1])
    return raw


def _find(node: Any, pattern: list[str], found: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The keys under `node` that `pattern` names (`*`: any one key), as key paths."""
    if not pattern:
        yield found
        return
    if not isinstance(node, Mapping):
        return
    head, *rest = pattern
    for key in list(node) if head == "*" else [head] if head in node else []:
        yield from _find(node[key], rest, (*found, key))


def _parent(raw: dict[str, Any], parts: list[str], create: bool, where: str) -> dict[str, Any]:
    """The mapping that holds key path `parts` (empty sections made on the way when `create`)."""
    node = raw
    for i, part in enumerate(parts[:-1]):
        if node.get(part) is None and create:
            node[part] = {}
        node = node.get(part)
        if not isinstance(node, dict):
            raise ParamsError(f"{where}: `{'.'.join(parts[: i + 1])}` is {type(node).__name__}, not a mapping of "
                              f"keys, so `{'.'.join(parts)}` cannot be set")
    return node


def override_key(item: str) -> str:
    """The dotted key a `-S KEY=VALUE` sets, under its current name."""
    key, sep, _ = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ParamsError(f"-S {item!r}: expected KEY=VALUE, a dotted key and a YAML value (e.g. -S export.opset=13)")
    return ".".join(_renamed_key(parts, f"-S {item}"))


def _overridden(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `raw` with each -S KEY=VALUE set, in order (the value is YAML, as in params.yaml)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        parts = override_key(item).split(".")
        text = item.partition("=")[2]
        try:
            value = _load_yaml(text, f"-S {item}") if text.strip() else ""
        except YAMLError as e:
            raise ParamsError(f"-S {item}: the value is not valid YAML ({_yaml_problem(e)})") from None
        _parent(out, parts, create=True, where=f"-S {item}")[parts[-1]] = value
    return out


def _yaml() -> YAML:
    """The loader of every params text: ruamel.yaml's safe loader, as DVC reads params.yaml (YAML 1.2: `yes` is a
    string), which refuses a key given twice in one mapping (a second `bench:`, a model listed twice)."""
    loader = YAML(typ="safe", pure=True)
    loader.allow_duplicate_keys = False
    return loader


def _load_yaml(text: str, where: str) -> Any:
    """`text` as YAML, refused in one line naming the key where it uses an anchor, an alias or a merge key (`<<`):
    params need none, and a few aliases of aliases expand a few kilobytes into gigabytes. Checked on the composed
    node graph, where an alias is the node it names reached again, before anything is expanded."""
    root = _yaml().compose(text)
    seen: set[int] = set()
    todo: list[tuple[Any, str]] = [(root, "")] if root is not None else []
    while todo:
        node, key = todo.pop()
        what = ("an alias (*)" if id(node) in seen else "an anchor (&)" if getattr(node, "anchor", None) else
                "a merge key (<<)" if node.tag == "tag:yaml.org,2002:merge" else "")
        if what:
            raise ParamsError(f"{where}: {key or 'the top level'} (line {node.start_mark.line + 1}) uses {what}; "
                              "params files may not use YAML anchors, aliases or merge keys: write the value out")
        seen.add(id(node))
        if isinstance(node, MappingNode):
            todo += reversed([(n, f"{key}.{shown(str(k.value), 40)}" if key else shown(str(k.value), 40))
                              for k, v in node.value for n in (k, v)])
        elif isinstance(node, SequenceNode):
            todo += reversed([(n, f"{key}[{i}]") for i, n in enumerate(node.value)])
    return _yaml().load(text)


def _yaml_problem(e: YAMLError) -> str:
    """ruamel's multi-line message as one line: where in the text, and what is wrong."""
    if isinstance(e, MarkedYAMLError) and e.problem_mark is not None:
        return f"line {e.problem_mark.line + 1}: {' '.join(str(e.problem).split())}"
    return " ".join(str(e).split())


def _mapping(text: str, where: str) -> dict[str, Any]:
    try:
        raw = _load_yaml(text, where) or {}
    except YAMLError as e:
        raise ParamsError(f"{where}: not valid YAML ({_yaml_problem(e)})") from None
    except RecursionError:
        raise ParamsError(f"{where}: not valid YAML (nested too deeply)") from None
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{where}: must be a YAML mapping")
    return _renamed(dict(raw), where)


def parse_params(text: str, path: Path) -> Params:
    """The params in `text` (the file at `path`), checked as a whole; then this command's -S applied and the
    result checked again, so an error says whether the file or a -S is wrong."""
    params = Params(_mapping(text, str(path)), path, text)
    _check(params)
    cmd = _COMMAND.get()
    if cmd is None or not cmd.overrides:
        return params
    params = Params(_overridden(params.raw, cmd.overrides), path, text, cmd.overrides)
    _check(params)
    return params


def revision_params(text: str, where: Path) -> Params:
    """Another revision's params (`where` names it): renamed keys moved and this command's -S applied, but not
    validated as a whole, since that revision may name models this checkout's registry does not know."""
    raw = _mapping(text, str(where))
    cmd = _COMMAND.get()
    overrides = cmd.overrides if cmd is not None else ()
    return Params(_overridden(raw, overrides), where, overrides=overrides)


PARAMS_HELP = "params file (default: ./params.yaml when there is one, else built-in defaults)"


def once(key: Path, load: Callable[[], Params]) -> Params:
    """`load()` the first time this command asks for `key` (a file, or `REV:params.yaml`), the same Params after."""
    cmd = _COMMAND.get()
    if cmd is None:
        return load()
    if key not in cmd.loaded:
        cmd.loaded[key] = load()
    return cmd.loaded[key]


def load_params(path: Path | None = None) -> Params:
    """Read and validate a params file, once per command. None means ./params.yaml, or built-in defaults where
    there is none (a verb run by hand outside a checkout); a file named explicitly must exist."""
    if path is None:
        if not paths.PARAMS.is_file():
            return parse_params("", paths.PARAMS)
        path = paths.PARAMS
    path = Path(path)

    def load() -> Params:
        try:
            with io.open_regular(path, MAX_PARAMS_BYTES, "params file") as f:
                text = f.read().decode("utf-8")
        except (io.NotRegular, UnicodeDecodeError) as e:
            raise ParamsError(str(e) if isinstance(e, io.NotRegular) else f"{path}: not UTF-8 text ({e})") from None
        return parse_params(text, path)

    return once(path.resolve(), load)
