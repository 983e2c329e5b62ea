"""arch/resnet.py: the ResNet body SCNet and SE-ResNeXt share (stage widths, strides, where a stage's first block
gets a shortcut, the classifier)."""

from __future__ import annotations

import torch
from torch import nn

from omzoo.arch.resnet import ResNetBody


class _Block(nn.Module):
    """A bottleneck stand-in that records how the body made it."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.args = (inplanes, planes, stride, downsample is not None)
        self.conv = nn.Conv2d(inplanes, planes * ResNetBody.expansion, 1, stride=stride)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Net(ResNetBody):
    def __init__(self, layers: tuple[int, int, int, int], stem: int) -> None:
        super().__init__()
        self.inplanes = stem
        self.conv1 = nn.Conv2d(3, stem, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(stem)
        self._body(layers, nn.AdaptiveAvgPool2d(1), 7)

    def _shortcut(self, out: int, stride: int) -> nn.Module:
        return nn.Conv2d(self.inplanes, out, 1, stride=stride)

    def _block(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> nn.Module:
        return _Block(inplanes, planes, stride, downsample)


def test_stages_widen_and_stride_like_resnet() -> None:
    net = _Net((2, 1, 1, 3), stem=64)
    made = [[b.args for b in stage] for stage in (net.layer1, net.layer2, net.layer3, net.layer4)]
    assert made == [
        [(64, 64, 1, True), (256, 64, 1, False)],  # stride 1 but 64 -> 256 channels: a shortcut
        [(256, 128, 2, True)],
        [(512, 256, 2, True)],
        [(1024, 512, 2, True), (2048, 512, 1, False), (2048, 512, 1, False)],
    ]
    assert net.fc.in_features == 2048 and net.fc.out_features == 7


def test_no_shortcut_where_neither_stride_nor_width_changes() -> None:
    net = _Net((1, 1, 1, 1), stem=256)
    assert net.layer1[0].args == (256, 64, 1, False)


def test_forward_is_stem_pool_stages_pool_fc() -> None:
    net = _Net((1, 1, 1, 1), stem=64).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            y = stage(y)
        ref = net.fc(torch.flatten(net.avgpool(y), 1))
        assert torch.equal(net(x), ref) and ref.shape == (2, 7)
