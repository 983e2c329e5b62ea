"""params.yaml: loaded once, validated as a whole, then each stage reads its own sections from here.

The rule: dvc.yaml passes paths on the command line; every tunable comes from params.yaml through this module
(and dvc.yaml lists the sections a stage reads, so editing `bench` never re-runs `compile`). A mistake fails on
load with one line naming the key: an unknown model, a model without a shard set, a batch size that is not a
positive integer, `infer.batch_size` outside `batch_sizes`, a `toolkit.version` that YAML read as a number.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from omzoo.core import paths, zoo

T = TypeVar("T")

_MODEL_KEYS = {"checkpoint", "shards", "options"}
_SHARD_KEYS = {"data", "labels"}


class ParamsError(ValueError):
    """params.yaml is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Params:
    raw: dict[str, Any]
    path: Path

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name) or {}
        if not isinstance(value, Mapping):
            raise ParamsError(f"{self.path}: `{name}` must be a mapping, got {type(value).__name__}")
        return dict(value)

    def typed(self, cls: type[T], name: str) -> T:
        """Section `name` as the dataclass `cls`: unknown keys and wrongly typed values fail by name."""
        return typed(cls, self.section(name), f"{self.path}: {name}")

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return {m: dict(e or {}) for m, e in self.section("models").items()}

    @property
    def batch_sizes(self) -> list[int]:
        return list(self.raw.get("batch_sizes") or [])

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
    """Build dataclass `cls` from `values`, checking names and the types of its annotations (int, float, bool,
    str): `min_iters: "5"` is an error here, not a benchmark that silently fails later."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        want = hints[name]
        ok = {int: isinstance(value, int) and not isinstance(value, bool),
              float: isinstance(value, int | float) and not isinstance(value, bool),
              bool: isinstance(value, bool), str: isinstance(value, str)}.get(want, True)
        if not ok:
            raise ParamsError(f"{where}.{name}: expected {want.__name__}, got {value!r} ({type(value).__name__})")
    return cls(**values)


def _check(p: Params) -> None:
    where = str(p.path)
    version = p.section("toolkit").get("version", "")
    if not isinstance(version, str):
        raise ParamsError(f"{where}: toolkit.version is the number {version!r}; YAML drops digits from numbers "
                          f"(1.30 reads as 1.3), so quote it: version: \"{version}\"")
    shards = p.section("shards")
    for pixels, entry in shards.items():
        try:
            zoo.pixel_recipe(pixels)
        except ValueError as e:
            raise ParamsError(f"{where}: shards.{pixels}: {e}") from None
        if not isinstance(entry, Mapping) or set(entry) - _SHARD_KEYS or not entry.get("data"):
            raise ParamsError(f"{where}: shards.{pixels} must be {{data: DIR, labels: FILE or DIR}}")
        if not entry.get("labels"):
            raise ParamsError(f"{where}: shards.{pixels}.labels is empty; name the labels file, or repeat the data "
                              f"folder ({entry['data']}) when the labels live inside it (CIFAR, class sub-folders), "
                              "so that DVC re-runs preprocess when they change")
    for model_id, entry in p.models.items():
        key = f"models.{model_id}"
        try:
            spec = zoo.get(model_id)
        except zoo.UnknownModel as e:
            raise ParamsError(f"{where}: {key}: {e}") from None
        extra = sorted(set(entry) - _MODEL_KEYS)
        if extra:
            raise ParamsError(f"{where}: {key}: unknown key(s) {extra}; known: {sorted(_MODEL_KEYS)}")
        pixels = entry.get("shards")
        if not pixels:
            raise ParamsError(f"{where}: {key} has no `shards:`; {model_id} reads {spec.recipe.pixels!r} pixels")
        if pixels not in shards:
            raise ParamsError(f"{where}: {key}.shards is {pixels!r}, which is not under `shards:` "
                              f"(have: {', '.join(shards) or 'none'})")
        if pixels != spec.recipe.pixels:
            raise ParamsError(f"{where}: {key}.shards is {pixels!r} but {model_id} reads {spec.recipe.pixels!r} pixels")
        try:
            spec.with_options(entry.get("options"))
        except ValueError as e:
            raise ParamsError(f"{where}: {key}.options: {e}") from None
    if "batch_sizes" not in p.raw:
        return
    sizes = p.raw.get("batch_sizes")
    if not isinstance(sizes, list) or not sizes:
        raise ParamsError(f"{where}: batch_sizes must be a non-empty list of positive integers, got {sizes!r}")
    bad = [b for b in sizes if isinstance(b, bool) or not isinstance(b, int) or b < 1]
    if bad:
        raise ParamsError(f"{where}: batch_sizes must be positive integers; bad: {bad}")
    if len(set(sizes)) != len(sizes):
        raise ParamsError(f"{where}: batch_sizes lists a size twice: {sizes}")
    infer_bs = p.section("infer").get("batch_size", sizes[0])
    if infer_bs not in sizes:
        raise ParamsError(f"{where}: infer.batch_size {infer_bs!r} must be one of batch_sizes {sizes} "
                          "(infer runs that compiled artefact)")


PARAMS_HELP = "params file (default: ./params.yaml when there is one, else built-in defaults)"


def load_params(path: Path | None = None) -> Params:
    """Read and validate a params file. None means ./params.yaml, or built-in defaults where there is none (a
    verb run by hand outside a checkout); a file named explicitly must exist. A malformed file is one clear error."""
    if path is None:
        if not paths.PARAMS.is_file():
            return Params({}, paths.PARAMS)
        path = paths.PARAMS
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{path}: must be a YAML mapping")
    params = Params(dict(raw), path)
    _check(params)
    return params
