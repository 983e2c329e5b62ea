"""The model registry: everything omzoo knows about a model, in one entry per model.

A sixth model needs one architecture module under omzoo/arch/ and one `register(ModelSpec(...))` here (plus its
line under `models:` in params.yaml). The entry carries everything model-specific: the architecture factory,
the published checkpoint's file and container, the input, the preprocessing recipe, the ONNX names the Ascend
guides used, and the published figures.
Published figures are copied from the Ascend ModelZoo guides as documented in the spec (docs/models.md);
throughput tables are img/s by batch size, accuracy tables are percentages.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe

if TYPE_CHECKING:
    import torch

#: Checkpoint containers omzoo can read (checkpoints.py) and write (weights stage, tests).
CONTAINERS = ("state_dict", "timm", "spach", "legacy")


@dataclass(frozen=True)
class ModelSpec:
    id: str
    arch: str  # "module:factory" under omzoo.arch
    title: str
    checkpoint_file: str  # the published file name
    container: str  # one of CONTAINERS: how the published file wraps its state dict
    input_size: tuple[int, int, int]  # C, H, W
    num_classes: int
    recipe: Recipe  # decode/resize/crop into uint8 shards, then normalisation at load time
    input_name: str
    output_name: str
    param_count: int
    macs: float  # multiply-accumulates per image (docs/models.md, FlopCounterMode / 2)
    published_accuracy: dict[str, dict[str, float]]  # platform -> {"top1": .., "top5": ..}
    published_throughput: dict[str, dict[int, float]]  # platform -> {batch size: img/s}
    reference_platform: str = "310P"  # the platform whose accuracy the guide's 1 % rule compares to
    #: atc --op_precision_mode entries the Ascend guide used (sMLP: Gelu high_performance)
    op_precision: dict[str, str] = field(default_factory=dict)
    #: Keyword options the architecture factory accepts, with defaults (params.yaml may override); each option's
    #: declared type is its default's, checked strictly on load (omzoo.core.params)
    options: dict[str, Any] = field(default_factory=dict)
    #: Caveats shown next to the published figures in reports
    notes: str = ""

    @property
    def flops(self) -> float:
        return 2.0 * self.macs

    def with_options(self, options: dict[str, Any] | None) -> ModelSpec:
        """This entry with a branch's `models.<id>.options` applied; unknown option names fail by name."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ValueError(f"{self.id}: unknown model option(s) {unknown}; this model takes: {known}")
        return dataclasses.replace(self, options={**self.options, **options}) if options else self

    def build(self) -> torch.nn.Module:
        """Instantiate the architecture with this entry's options, in eval mode. `arch` names a module under
        omzoo.arch (`ran:ran92_cifar10`), or any importable module when it holds a dot (`pkg.mod:factory`)."""
        module_name, factory = self.arch.split(":")
        module = importlib.import_module(module_name if "." in module_name else f"omzoo.arch.{module_name}")
        return getattr(module, factory)(**self.options).eval()


REGISTRY: dict[str, ModelSpec] = {}


class UnknownModel(ValueError):
    """A model id that is not in the registry (a ValueError, so the CLI prints it as one line)."""


def register(spec: ModelSpec) -> ModelSpec:
    """Add an entry; its recipe's pixel half must agree with every model that shares its shard set."""
    if spec.container not in CONTAINERS:
        raise ValueError(f"{spec.id}: unknown container {spec.container!r}")
    if "-" in spec.id:
        raise ValueError(f"{spec.id}: model ids must not contain '-' (it separates model and batch size)")
    if spec.recipe.shape != spec.input_size:
        raise ValueError(f"{spec.id}: recipe gives {spec.recipe.shape} pixels but the input is {spec.input_size}")
    for other in REGISTRY.values():
        if other.recipe.pixels == spec.recipe.pixels and not other.recipe.same_pixels(spec.recipe):
            raise ValueError(f"{spec.id}: recipe {spec.recipe.pixels!r} differs from {other.id}'s pixels of that name")
    REGISTRY[spec.id] = spec
    return spec


def get(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        raise UnknownModel(f"unknown model {model_id!r}; registered: {', '.join(REGISTRY)}") from None


def pixel_recipe(pixels: str) -> Recipe:
    """The pixel half of the shard set `pixels` (e.g. bilinear224), from any model that reads it."""
    for spec in REGISTRY.values():
        if spec.recipe.pixels == pixels:
            return spec.recipe
    known = ", ".join(sorted({s.recipe.pixels for s in REGISTRY.values()}))
    raise ValueError(f"unknown pixels {pixels!r}: no registered model reads them (known: {known})")


def pixel_classes(pixels: str) -> int | None:
    """How many classes the models reading the shard set `pixels` have (what its labels must lie below), or None
    where they disagree (then each model's evaluate checks its own)."""
    counts = {spec.num_classes for spec in REGISTRY.values() if spec.recipe.pixels == pixels}
    return counts.pop() if len(counts) == 1 else None


register(ModelSpec(
    id="scnet50_v1d",
    arch="scnet:scnet50_v1d",
    title="SCNet-50 v1d",
    checkpoint_file="scnet50_v1d-4109d1e1.pth",
    container="state_dict",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe=Recipe("bilinear224", 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD),  # docs/models.md §1.5, §2.6
    input_name="input",
    output_name="output",
    param_count=25_583_816,
    macs=4.685e9,
    published_accuracy={"310P": {"top1": 80.34}, "upstream": {"top1": 80.47, "top5": 95.32}},
    published_throughput={
        "310P": {1: 956, 4: 2135, 8: 2094, 16: 1785, 32: 1629, 64: 1585},
    },
))

register(ModelSpec(
    id="seresnext101_32x4d",
    arch="seresnext:seresnext101_32x4d",
    title="SE-ResNeXt101 32x4d",
    checkpoint_file="state_dict.pth",
    container="state_dict",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe=Recipe("bilinear224", 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD),  # docs/models.md §1.5, §2.6
    input_name="image",
    output_name="class",
    param_count=48_955_416,
    macs=7.975e9,
    published_accuracy={"310P": {"top1": 78.24}},
    published_throughput={
        "310P": {1: 555.81, 4: 927.09, 8: 844.82, 16: 721.43, 32: 421.14, 64: 641.26},
        "310": {1: 182.224, 4: 207.960, 8: 218.401, 16: 225.180, 32: 222.117, 64: 223.843},
        "T4": {1: 346.484, 4: 604.421, 8: 648.682, 16: 723.749, 32: 771.672, 64: 789.784},
    },
))

register(ModelSpec(
    id="tresnet_m",
    arch="tresnet:tresnet_m",
    title="TResNet-M",
    checkpoint_file="model_best.pth.tar",
    container="timm",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe=Recipe("bilinear224", 224, 256, "bilinear"),  # timm mean 0, std 1: x/255 only (§3.5)
    input_name="image",
    output_name="class",
    param_count=31_389_032,
    macs=5.737e9,
    published_accuracy={"310P": {"top5": 94.43}, "training port": {"top1": 78.72}},
    published_throughput={"310P": {1: 1154, 4: 2552, 8: 3158, 16: 3249, 32: 2756}},
))

register(ModelSpec(
    id="smlpnet_tiny",
    arch="smlp:smlpnet_tiny",
    title="sMLPNet-T",
    checkpoint_file="smlp_t.pth",
    container="spach",
    input_size=(3, 224, 224),
    num_classes=1000,
    recipe=Recipe("bicubic224", 224, 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD),  # PIL bicubic (§4.5)
    input_name="input",
    output_name="output",
    param_count=24_123_584,
    macs=4.989e9,
    published_accuracy={"310P": {"top1": 81.25, "top5": 95.49}, "upstream": {"top1": 81.9}},
    published_throughput={
        "310P": {1: 171.6, 4: 273.5, 8: 298.7, 16: 290.0, 32: 273.0, 64: 257.5},
        "T4": {1: 177.7, 4: 341.5, 8: 359.0, 16: 363.7, 32: 371.0, 64: 359.1},
    },
    op_precision={"Gelu": "high_performance"},
))

register(ModelSpec(
    id="ran92_cifar10",
    arch="ran:ran92_cifar10",
    title="Residual-Attention-Net-92 (CIFAR-10)",
    checkpoint_file="model_92_sgd.pkl",
    container="legacy",
    input_size=(3, 32, 32),
    num_classes=10,
    recipe=Recipe("cifar32", 32, None, None),  # ToTensor only, 32x32 as stored (§5.6)
    input_name="image",
    output_name="class",
    param_count=19_920_362,
    macs=1.089e9,
    published_accuracy={"310P": {"top1": 95.34}, "310": {"top1": 95.34}, "GPU": {"top1": 95.4}},
    published_throughput={
        "310P": {1: 1017.57, 4: 3572.93, 8: 4798.82, 16: 7806.96, 32: 7742.07, 64: 5927.82},
        "310": {1: 672.122, 4: 2845.32, 8: 3317.80, 16: 3533.76, 32: 3633.64, 64: 3700.00},
        "T4": {1: 713.4245, 4: 2306.4459, 8: 3224.1293, 16: 3711.3928, 32: 3950.9440, 64: 4217.2961},
    },
    options={"nearest_resize": False},
    notes="Ascend's 95.34 % was measured with the nearest-resize rewrite (options.nearest_resize).",
))
