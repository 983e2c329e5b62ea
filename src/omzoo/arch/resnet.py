"""The body SCNet-50 v1d and SE-ResNeXt-101 share: a stem given by the subclass, then four stages of bottleneck
blocks, a pool and the classifier, registered in the order (and so with the state-dict keys) of both originals.

A subclass sets `conv1`, `bn1` and `inplanes` before calling `_body`, and says how a stage's first block gets its
shortcut (`_shortcut`) and how a block is made (`_block`).
"""

from __future__ import annotations

import torch
from torch import nn


class ResNetBody(nn.Module):
    """Stages of `expansion`-wide bottlenecks at strides 1, 2, 2, 2 after a stem, then `avgpool` and `fc`."""

    expansion = 4
    inplanes: int

    def _body(self, layers: tuple[int, int, int, int], avgpool: nn.Module, num_classes: int) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = avgpool
        self.fc = nn.Linear(512 * self.expansion, num_classes)

    def _shortcut(self, out: int, stride: int) -> nn.Module:
        raise NotImplementedError

    def _block(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> nn.Module:
        raise NotImplementedError

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * self.expansion
        downsample = self._shortcut(out, stride) if stride != 1 or self.inplanes != out else None
        mods = [self._block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        mods += [self._block(out, planes, 1, None) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
