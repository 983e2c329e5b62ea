"""The model registry (omzoo.core.zoo): what register() refuses, get() and with_options() errors, building an
entry, and the five entries' published figures."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from omzoo.arch.ran import Upsample
from omzoo.core import zoo
from omzoo.core.recipe import IMAGENET_MEAN, IMAGENET_STD, Recipe

MODELS = ["scnet50_v1d", "seresnext101_32x4d", "tresnet_m", "smlpnet_tiny", "ran92_cifar10"]
BATCH_SIZES = {1, 4, 8, 16, 32, 64}  # the Ascend guides' batch sizes


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, zoo.ModelSpec]:
    """A copy of the registry for register() to change; the real one is back after the test."""
    copy = dict(zoo.REGISTRY)
    monkeypatch.setattr(zoo, "REGISTRY", copy)
    return copy


def _entry(**changes: object) -> zoo.ModelSpec:
    """RAN-92's entry under another id, with `changes`."""
    return dataclasses.replace(zoo.get("ran92_cifar10"), **{"id": "newnet", **changes})


def test_the_five_models_are_registered() -> None:
    assert list(zoo.REGISTRY) == MODELS
    assert all(zoo.get(m).id == m for m in MODELS)


def test_get_of_an_unknown_id_names_it_and_the_registered_ones() -> None:
    with pytest.raises(zoo.UnknownModel) as e:
        zoo.get("resnet50")
    assert isinstance(e.value, ValueError)  # the CLI prints ValueErrors as one line
    assert str(e.value) == f"unknown model 'resnet50'; registered: {', '.join(MODELS)}"


def test_register_adds_an_entry_that_shares_pixels_with_another_normalisation(registry: dict) -> None:
    """Same pixel half as RAN-92 with a mean/std of its own: one shard set, normalised differently at load."""
    spec = zoo.register(_entry(recipe=Recipe("cifar32", 32, None, None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))))
    assert zoo.get("newnet") is spec and list(registry)[-1] == "newnet"
    assert zoo.pixel_recipe("cifar32").same_pixels(spec.recipe)


def test_register_refuses_a_recipe_that_does_not_give_the_input(registry: dict) -> None:
    with pytest.raises(ValueError) as e:
        zoo.register(_entry(input_size=(3, 64, 64)))
    assert str(e.value) == "newnet: recipe gives (3, 32, 32) pixels but the input is (3, 64, 64)"
    assert "newnet" not in registry


@pytest.mark.parametrize(("recipe", "other"), [
    (Recipe("bilinear224", 224, 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD), "scnet50_v1d"),  # interpolation
    (Recipe("bilinear224", 224, 232, "bilinear"), "scnet50_v1d"),  # resize
    (Recipe("cifar32", 32, 36, "bilinear"), "ran92_cifar10"),  # a resize where the others store as is
])
def test_register_refuses_a_second_pixel_half_under_one_name(registry: dict, recipe: Recipe, other: str) -> None:
    """Two models that read one shard set must agree on how its pixels are made."""
    size = (3, recipe.size, recipe.size)
    with pytest.raises(ValueError) as e:
        zoo.register(_entry(recipe=recipe, input_size=size))
    assert str(e.value) == f"newnet: recipe {recipe.pixels!r} differs from {other}'s pixels of that name"
    assert "newnet" not in registry


@pytest.mark.parametrize(("changes", "message"), [
    ({"container": "safetensors"}, "newnet: unknown container 'safetensors'"),
    ({"id": "new-net"}, "new-net: model ids must not contain '-' (it separates model and batch size)"),
])
def test_register_refuses_a_bad_container_or_id(registry: dict, changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as e:
        zoo.register(_entry(**changes))
    assert str(e.value) == message and list(registry) == MODELS


def test_each_model_carries_its_recipe() -> None:
    """docs/models.md §1.5, §2.6, §3.5, §4.5, §5.6: timm's TResNet is x/255 only, sMLP resizes bicubic, RAN-92
    takes CIFAR's 32x32 as stored."""
    imagenet = Recipe("bilinear224", 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    assert zoo.get("scnet50_v1d").recipe == zoo.get("seresnext101_32x4d").recipe == imagenet
    assert zoo.get("tresnet_m").recipe == Recipe("bilinear224", 224, 256, "bilinear")
    assert zoo.get("smlpnet_tiny").recipe == Recipe("bicubic224", 224, 256, "bicubic", IMAGENET_MEAN, IMAGENET_STD)
    assert zoo.get("ran92_cifar10").recipe == Recipe("cifar32", 32, None, None)


def test_pixel_recipe_resolves_a_shard_set_name() -> None:
    assert zoo.pixel_recipe("bicubic224") == zoo.get("smlpnet_tiny").recipe
    assert zoo.pixel_recipe("bilinear224").same_pixels(zoo.get("tresnet_m").recipe)
    with pytest.raises(ValueError) as e:
        zoo.pixel_recipe("nope")
    assert str(e.value) == ("unknown pixels 'nope': no registered model reads them "
                            "(known: bicubic224, bilinear224, cifar32)")


def test_with_options_applies_known_options_and_leaves_the_entry_alone() -> None:
    spec = zoo.get("ran92_cifar10")
    nearest = spec.with_options({"nearest_resize": True})
    assert nearest.options == {"nearest_resize": True} and spec.options == {"nearest_resize": False}
    assert dataclasses.replace(nearest, options=spec.options) == spec  # nothing else changed
    assert spec.with_options(None) is spec and spec.with_options({}) is spec
    assert all(u.nearest for u in nearest.build().modules() if isinstance(u, Upsample))


@pytest.mark.parametrize(("model_id", "known"), [("ran92_cifar10", "nearest_resize"), ("tresnet_m", "none")])
def test_with_options_rejects_an_unknown_option_by_name(model_id: str, known: str) -> None:
    with pytest.raises(ValueError) as e:
        zoo.get(model_id).with_options({"nearest_resise": True, "nearest_resize": True})
    expected = ["nearest_resise"] if known != "none" else ["nearest_resise", "nearest_resize"]
    assert str(e.value) == f"{model_id}: unknown model option(s) {expected}; this model takes: {known}"


def test_build_imports_a_dotted_arch_outside_omzoo_arch_and_returns_it_in_eval() -> None:
    model = dataclasses.replace(zoo.get("tresnet_m"), arch="torch.nn:Dropout").build()
    assert isinstance(model, nn.Dropout) and not model.training


@pytest.mark.parametrize("model_id", MODELS)
def test_entry_agrees_with_its_architecture(model_id: str) -> None:
    """Built on the meta device (no weights allocated): its parameter count and output are the entry's."""
    spec = zoo.get(model_id)
    with torch.device("meta"):
        model = spec.build()
        out = model(torch.empty(2, *spec.input_size))
    assert sum(p.numel() for p in model.parameters()) == spec.param_count
    assert tuple(out.shape) == (2, spec.num_classes) and not model.training
    assert spec.recipe.shape == spec.input_size and spec.container in zoo.CONTAINERS
    assert spec.input_name and spec.output_name and spec.flops == 2 * spec.macs > 0


@pytest.mark.parametrize("model_id", MODELS)
def test_published_figures_are_well_formed(model_id: str) -> None:
    spec = zoo.get(model_id)
    assert spec.published_accuracy[spec.reference_platform]  # the platform the 1 % rule compares to
    for platform, acc in spec.published_accuracy.items():
        assert acc and set(acc) <= {"top1", "top5"}, platform
        assert all(0 < v <= 100 for v in acc.values()), platform
        assert acc.get("top1", 0) <= acc.get("top5", 100), platform
    assert spec.published_throughput
    for platform, table in spec.published_throughput.items():
        assert table and set(table) <= BATCH_SIZES, platform
        assert all(isinstance(bs, int) and ips > 0 for bs, ips in table.items()), platform
