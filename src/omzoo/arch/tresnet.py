"""TResNet-M as timm v0.4.5 computes it **after Ascend's TResNet.patch** (docs/models.md §3).

The published Ascend checkpoint was trained with the patched code, so its semantics, not
upstream timm's, are implemented here:

* every ``conv2d_iabn`` is ``Conv`` + ``BatchNorm2d`` (signed weight, eps 1e-5) + optional
  ``LeakyReLU(0.01)``; the patch hard-codes slope 0.01 (upstream blocks use 1e-3);
* the anti-alias blur is a depthwise 3x3 binomial filter with **zero** padding 1, stride 2
  (upstream reflect-pads);
* the stem is a space-to-depth by 4 with channel order ``(bh*4 + bw)*C + c`` (ONNX
  ``SpaceToDepth``), not ``pixel_unshuffle``'s ``c*16 + bh*4 + bw``.

Attribute names reproduce the checkpoint keys (``body.*``, ``head.fc.*``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TResNet", "tresnet_m", "SpaceToDepth", "AntiAliasDownsample", "LEAKY_SLOPE"]

#: The patch's ``LeakyRelu`` module ignores ``act_param`` and always uses this slope.
LEAKY_SLOPE = 0.01


def conv_bn_act(ci: int, co: int, kernel_size: int, act: bool) -> nn.Sequential:
    """``conv2d_iabn`` as patched: keys ``0`` (conv) and ``1`` (BN); ``2`` is the parameter-free act."""
    layers: list[nn.Module] = [
        nn.Conv2d(ci, co, kernel_size, stride=1, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(co, eps=1e-5),
    ]
    if act:
        layers.append(nn.LeakyReLU(LEAKY_SLOPE))
    return nn.Sequential(*layers)


class SpaceToDepth(nn.Module):
    """Block-4 space-to-depth; output channel ``(bh*4 + bw)*C + c`` holds pixel ``(c, 4i+bh, 4j+bw)``.

    The batch is written as ``-1`` in the reshapes so the traced ONNX graph keeps a dynamic batch.
    """

    def __init__(self, block_size: int = 4) -> None:
        super().__init__()
        self.bs = block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bs = self.bs
        _, c, h, w = x.shape
        x = x.reshape(-1, c, h // bs, bs, w // bs, bs)
        x = x.permute(0, 3, 5, 1, 2, 4)
        return x.reshape(-1, c * (bs * bs), h // bs, w // bs)


class AntiAliasDownsample(nn.Module):
    """Ascend-patched blur: depthwise ``[1,2,1]^T[1,2,1]/16``, stride 2, **zero** padding 1.

    The filter is a non-persistent buffer built once for a constructor-time channel count: it is
    not in the checkpoint, and no tensor is created in ``forward`` (ONNX export needs a kernel of
    known shape; CUDA-graph capture and ``torch.compile`` need no host tensors per call).
    """

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        a = torch.tensor([1.0, 2.0, 1.0])
        k = a[:, None] * a[None, :]
        k = k / k.sum()
        self.register_buffer("filt", k[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.filt, stride=self.stride, padding=1, groups=self.channels)


class SEModule(nn.Module):
    """Squeeze-excite with 1x1 convs (bias) and a ReLU (not LeakyReLU) between them."""

    def __init__(self, channels: int, reduction_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduction_channels, 1, bias=True)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(reduction_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.mean((2, 3), keepdim=True)
        z = self.fc2(self.act(self.fc1(z)))
        return x * self.gate(z)


def _downsample(inplanes: int, outplanes: int) -> nn.Sequential:
    """Average-pool shortcut: ``AvgPool(2, s2, ceil, no pad count)`` then 1x1 conv + BN (no act)."""
    return nn.Sequential(
        nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True, count_include_pad=False),
        conv_bn_act(inplanes, outplanes, 1, act=False),
    )


class BasicBlock(nn.Module):
    """Stages 1-2. Stride 2 is conv3x3(s1)+BN+LeakyReLU followed by the blur (keys ``conv1.0.*``)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, use_se: bool = True) -> None:
        super().__init__()
        if stride == 1:
            self.conv1 = conv_bn_act(inplanes, planes, 3, act=True)
        else:
            self.conv1 = nn.Sequential(conv_bn_act(inplanes, planes, 3, act=True), AntiAliasDownsample(planes))
        self.conv2 = conv_bn_act(planes, planes, 3, act=False)
        self.relu = nn.ReLU()
        self.downsample = _downsample(inplanes, planes) if stride != 1 or inplanes != planes else None
        self.se = SEModule(planes, max(planes * self.expansion // 4, 64)) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.downsample(x) if self.downsample is not None else x
        o = self.conv2(self.conv1(x))
        if self.se is not None:
            o = self.se(o)
        return self.relu(o + r)


class Bottleneck(nn.Module):
    """Stages 3-4. SE acts on ``planes`` channels *before* ``conv3`` (reduction ``max(4*planes//8, 64)``)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, use_se: bool = True) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = conv_bn_act(inplanes, planes, 1, act=True)
        if stride == 1:
            self.conv2 = conv_bn_act(planes, planes, 3, act=True)
        else:
            self.conv2 = nn.Sequential(conv_bn_act(planes, planes, 3, act=True), AntiAliasDownsample(planes))
        self.se = SEModule(planes, max(out // 8, 64)) if use_se else None
        self.conv3 = conv_bn_act(planes, out, 1, act=False)
        self.relu = nn.ReLU()
        self.downsample = _downsample(inplanes, out) if stride != 1 or inplanes != out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.downsample(x) if self.downsample is not None else x
        o = self.conv2(self.conv1(x))
        if self.se is not None:
            o = self.se(o)
        o = self.conv3(o)
        return self.relu(o + r)


class _Head(nn.Module):
    """'fast' global pool (mean over H, W, flattened) then ``fc``."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


class TResNet(nn.Module):
    """TResNet (BN + LeakyReLU(0.01) variant); ``layers`` blocks per stage, width factor 1."""

    def __init__(self, layers: tuple[int, int, int, int] = (3, 4, 11, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        stages: list[tuple[type[BasicBlock] | type[Bottleneck], int, int, bool]] = [
            (BasicBlock, 64, 1, True),
            (BasicBlock, 128, 2, True),
            (Bottleneck, 256, 2, True),
            (Bottleneck, 512, 2, False),
        ]
        body: OrderedDict[str, nn.Module] = OrderedDict()
        body["SpaceToDepth"] = SpaceToDepth(4)
        body["conv1"] = conv_bn_act(3 * 16, 64, 3, act=True)
        for i, ((block, planes, stride, use_se), n) in enumerate(zip(stages, layers, strict=True)):
            body[f"layer{i + 1}"] = self._make_layer(block, planes, n, stride, use_se)
        self.body = nn.Sequential(body)
        self.num_features = self.inplanes
        self.head = _Head(self.num_features, num_classes)
        self._init_weights()

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, n: int, stride: int, use_se: bool
    ) -> nn.Sequential:
        blocks = [block(self.inplanes, planes, stride, use_se)]
        self.inplanes = planes * block.expansion
        blocks += [block(self.inplanes, planes, 1, use_se) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        """timm's init: kaiming fan-out convs, last BN of each residual branch zeroed, fc ~ N(0, 0.01)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.conv3[1].weight)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def tresnet_m(*, num_classes: int = 1000) -> TResNet:
    """TResNet-M (layers 3-4-11-3), the Ascend-patched semantics of ``model_best.pth.tar``."""
    return TResNet(layers=(3, 4, 11, 3), num_classes=num_classes)
