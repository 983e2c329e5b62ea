"""SE-ResNeXt-101 32x4d in the layout of Ascend's own ``SE_ResNeXt`` class (not mmcls).

Spec: docs/models.md §2 (source ``Ascend/ModelZoo-PyTorch@6a2804a3 .../Se_Resnext101_pth2onnx.py``), which is
what ``state_dict.pth`` loads into strictly. Quirks kept for fidelity:

* the SE lives directly in the bottleneck (``fc1``/``fc2`` are 2-D ``nn.Linear``, with biases), uses the
  block's single ``relu`` module, and is applied to ``bn3``'s output *before* the residual add;
* the SE squeeze and the head are fixed-kernel ``AvgPool2d`` (56/28/14/7 and 7), as in the original,
  which ties the model to 224x224 inputs;
* shortcuts are a strided 1x1 conv + BN (no avg-down); the grouped 3x3 conv carries the stride.
"""

from __future__ import annotations

import torch
from torch import nn

from omzoo.arch.resnet import ResNetBody

__all__ = ["Bottleneck", "SEResNeXt", "seresnext101_32x4d"]

# Spatial size of each stage's output at 224x224 input: the SE pool kernel per ``planes``.
_SE_POOL = {64: 56, 128: 28, 256: 14, 512: 7}


class Bottleneck(nn.Module):
    """ResNeXt bottleneck (width ``2*planes``, 32 groups) with squeeze-excitation on ``bn3``'s output."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        num_group: int = 32,
    ) -> None:
        super().__init__()
        width = planes * 2
        out = planes * self.expansion
        hidden = round(planes / 4)
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=num_group, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.globalAvgPool = nn.AvgPool2d(_SE_POOL[planes], stride=1)  # camelCase: the original name
        self.fc1 = nn.Linear(out, hidden)
        self.fc2 = nn.Linear(hidden, out)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        o = self.relu(self.bn1(self.conv1(x)))
        o = self.relu(self.bn2(self.conv2(o)))
        o = self.bn3(self.conv3(o))
        if self.downsample is not None:
            residual = self.downsample(x)
        z = torch.flatten(self.globalAvgPool(o), 1)
        z = self.sigmoid(self.fc2(self.relu(self.fc1(z))))
        return self.relu(o * z[:, :, None, None] + residual)


class SEResNeXt(ResNetBody):
    """7x7-stem ResNeXt trunk; attribute names match Ascend's ``SE_ResNeXt`` (keys without prefix)."""

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 23, 3),
        num_group: int = 32,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.num_group = num_group
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self._body(layers, nn.AvgPool2d(7, stride=1), num_classes)

    def _shortcut(self, out: int, stride: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(self.inplanes, out, 1, stride=stride, bias=False),
            nn.BatchNorm2d(out),
        )

    def _block(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> nn.Module:
        return Bottleneck(inplanes, planes, stride, downsample, self.num_group)


def seresnext101_32x4d(*, num_classes: int = 1000) -> SEResNeXt:
    """SE-ResNeXt-101 32x4d: ``SE_ResNeXt(Bottleneck, [3,4,23,3], num_group=32)``; 224x224 input only."""
    return SEResNeXt((3, 4, 23, 3), num_group=32, num_classes=num_classes)
