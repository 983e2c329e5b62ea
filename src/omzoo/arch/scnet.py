"""SCNet-50 v1d (self-calibrated convolutions), laid out so ``scnet50_v1d-4109d1e1.pth`` loads strictly.

Spec: docs/models.md §1 (source ``MCG-NKU/SCNet@c0b5bd6a scnet.py``). The quirks that matter for fidelity:

* deep 3x3 stem whose last BN is the top-level ``bn1``, not ``conv1.7``;
* every 3x3 conv inside a block has stride 1; the stride-2 of a stage's first block is a 3x3 average
  pool (``avd_layer``) applied *after* the ReLU of both branches;
* shortcuts average-pool first (``ceil_mode=True, count_include_pad=False``), even the no-op 1x1 pool
  of layer1, which keeps the conv/BN at indices 1 and 2;
* ``k2`` pools 4x4/stride 4 with floor, and the upsample back is torch's legacy ``nearest``
  (``src = floor(dst * in / out)``), not ``nearest-exact``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from omzoo.arch.resnet import ResNetBody

__all__ = ["SCBottleneck", "SCConv", "SCNet", "scnet50_v1d"]


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False)


class SCConv(nn.Module):
    """Self-calibrated 3x3 conv: ``k4(k3(x) * sigmoid(x + up(k2(x))))``; output size = input size.

    ``k2`` floors (14x14 -> 3x3 ignores rows/cols 12-13), and ``up`` is legacy nearest to the input's
    own size, so 3 -> 14 maps rows 0-4 -> 0, 5-9 -> 1, 10-13 -> 2.
    """

    def __init__(self, planes: int, pooling_r: int = 4) -> None:
        super().__init__()
        self.k2 = nn.Sequential(
            nn.AvgPool2d(kernel_size=pooling_r, stride=pooling_r),
            _conv3x3(planes, planes),
            nn.BatchNorm2d(planes),
        )
        self.k3 = nn.Sequential(_conv3x3(planes, planes), nn.BatchNorm2d(planes))
        self.k4 = nn.Sequential(_conv3x3(planes, planes), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # size taken from x's shape (not Python ints) so the ONNX Resize stays batch-dynamic.
        up = F.interpolate(self.k2(x), size=x.shape[-2:], mode="nearest")
        gate = torch.sigmoid(x + up)
        return self.k4(self.k3(x) * gate)


class SCBottleneck(nn.Module):
    """Two half-width branches (plain ``k1`` and ``scconv``) concatenated a-then-b into ``conv3``.

    With ``avd`` the block's stride is taken by one shared AvgPool(3, s2, p1) applied to both branches
    after their ReLU; the 3x3 convs themselves always run at stride 1 on the input resolution.
    """

    expansion = 4
    pooling_r = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        bottleneck_width: int = 32,
    ) -> None:
        super().__init__()
        group_width = int(planes * (bottleneck_width / 64.0))
        self.conv1_a = nn.Conv2d(inplanes, group_width, 1, bias=False)
        self.bn1_a = nn.BatchNorm2d(group_width)
        self.conv1_b = nn.Conv2d(inplanes, group_width, 1, bias=False)
        self.bn1_b = nn.BatchNorm2d(group_width)
        self.avd = stride > 1
        self.avd_layer = nn.AvgPool2d(3, stride, padding=1) if self.avd else None
        self.k1 = nn.Sequential(_conv3x3(group_width, group_width), nn.BatchNorm2d(group_width))
        self.scconv = SCConv(group_width, self.pooling_r)
        self.conv3 = nn.Conv2d(group_width * 2, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        a = self.relu(self.bn1_a(self.conv1_a(x)))
        b = self.relu(self.bn1_b(self.conv1_b(x)))
        a = self.relu(self.k1(a))
        b = self.relu(self.scconv(b))
        if self.avd_layer is not None:
            a = self.avd_layer(a)
            b = self.avd_layer(b)
        out = self.bn3(self.conv3(torch.cat([a, b], dim=1)))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(out + residual)


class SCNet(ResNetBody):
    """ResNet-D style trunk: deep stem (bn1 outside ``conv1``), avg-down shortcuts, avd strides."""

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        stem_width: int = 32,
        bottleneck_width: int = 32,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.bottleneck_width = bottleneck_width
        self.inplanes = stem_width * 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
            _conv3x3(stem_width, stem_width),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(inplace=True),
            _conv3x3(stem_width, stem_width * 2),
        )
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self._body(layers, nn.AdaptiveAvgPool2d(1), num_classes)

    def _shortcut(self, out: int, stride: int) -> nn.Module:
        # avg_down: the pool exists even at stride 1 (a 1x1 no-op) so indices stay 1 and 2.
        return nn.Sequential(
            nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(self.inplanes, out, 1, stride=1, bias=False),
            nn.BatchNorm2d(out),
        )

    def _block(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> nn.Module:
        return SCBottleneck(inplanes, planes, stride, downsample, self.bottleneck_width)


def scnet50_v1d(*, num_classes: int = 1000) -> SCNet:
    """SCNet-50 v1d: ``SCNet(SCBottleneck, [3,4,6,3], deep_stem, stem_width=32, avg_down, avd)``."""
    return SCNet((3, 4, 6, 3), stem_width=32, bottleneck_width=32, num_classes=num_classes)
