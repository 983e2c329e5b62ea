"""The model registry: everything omzoo knows about a model, in one entry per model.

A sixth model needs one architecture module under omzoo/arch/ and one `register(ModelSpec(...))` here.
Published figures are copied from the Ascend ModelZoo guides as documented in the spec (MODELS.md);
throughput tables are img/s by batch size, accuracy tables are percentages.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    profile: str  # preprocessing profile name (omzoo.data.profiles)
    dataset: str  # "imagenet" or "cifar10"
    input_name: str
    output_name: str
    dynamic_output: bool  # whether the Ascend export marked the output's batch dynamic too
    param_count: int
    macs: float  # multiply-accumulates per image (MODELS.md, FlopCounterMode / 2)
    published_accuracy: dict[str, dict[str, float]]  # platform -> {"top1": .., "top5": ..}
    published_throughput: dict[str, dict[int, float]]  # platform -> {batch size: img/s}
    reference_platform: str = "310P"  # the platform whose accuracy the guide's 1 % rule compares to
    #: atc --op_precision_mode entries the Ascend guide used (sMLP: Gelu high_performance)
    op_precision: dict[str, str] = field(default_factory=dict)
    #: Keyword options the architecture factory accepts, with defaults (params.yaml may override)
    options: dict[str, Any] = field(default_factory=dict)
    #: Caveats shown next to the published figures in reports
    notes: str = ""

    @property
    def flops(self) -> float:
        return 2.0 * self.macs

    def build(self, **options: Any) -> torch.nn.Module:
        """Instantiate the architecture in eval mode; unknown options fail loudly in the factory."""
        module_name, factory = self.arch.split(":")
        module = importlib.import_module(f"omzoo.arch.{module_name}")
        merged = {**self.options, **options}
        return getattr(module, factory)(**merged).eval()


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.container not in CONTAINERS:
        raise ValueError(f"{spec.id}: unknown container {spec.container!r}")
    REGISTRY[spec.id] = spec
    return spec


def get(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; registered: {', '.join(REGISTRY)}") from None


register(ModelSpec(
    id="scnet50_v1d",
    arch="scnet:scnet50_v1d",
    title="SCNet-50 v1d",
    checkpoint_file="scnet50_v1d-4109d1e1.pth",
    container="state_dict",
    input_size=(3, 224, 224),
    num_classes=1000,
    profile="imagenet",
    dataset="imagenet",
    input_name="input",
    output_name="output",
    dynamic_output=False,
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
    profile="imagenet",
    dataset="imagenet",
    input_name="image",
    output_name="class",
    dynamic_output=True,
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
    profile="tresnet",
    dataset="imagenet",
    input_name="image",
    output_name="class",
    dynamic_output=True,
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
    profile="smlp",
    dataset="imagenet",
    input_name="input",
    output_name="output",
    dynamic_output=True,
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
    profile="cifar",
    dataset="cifar10",
    input_name="image",
    output_name="class",
    dynamic_output=True,
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


HELP = "list the registered models with their input, checkpoint container and published figures"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", default="github", help="tabulate table format")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    rows = [(s.id, s.title, "x".join(map(str, s.input_size)), s.num_classes, s.checkpoint_file, s.container,
             s.profile, f"{s.param_count:,}", f"{s.flops / 1e9:.2f}",
             " ".join(f"{p}:{k}={v}" for p, acc in s.published_accuracy.items() for k, v in acc.items()))
            for s in REGISTRY.values()]
    print(tabulate(rows, ["id", "model", "input", "classes", "checkpoint", "container", "profile", "params",
                          "GFLOPs", "published accuracy"], tablefmt=args.format))
    return 0
