"""Residual Attention Network-92 for CIFAR-10 (``ResidualAttentionModel_92_32input_update``).

Re-implemented from docs/models.md §5. Attribute names reproduce the keys of the published
``model_92_sgd.pkl`` (tengshaofeng/ResidualAttentionNetwork-pytorch), including the 41 ``conv4``
projections that the original ``ResidualBlock`` always creates but never runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    import onnx

__all__ = ["ran92_cifar10", "rewrite_resize_nearest", "ResidualAttentionModel92", "ResidualUnit", "Upsample"]


class ResidualUnit(nn.Module):
    """Pre-activation bottleneck ("ResidualBlock").

    ``conv4`` always exists (it is in the checkpoint) but is applied only when the shape changes;
    the projection then takes the pre-activated ``a`` while the identity path takes the raw ``x``.
    There is no activation after the addition.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        mid = out_ch // 4
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.conv4 = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
        self.use_projection = in_ch != out_ch or stride != 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        y = self.conv1(a)
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        r = self.conv4(a) if self.use_projection else x
        return y + r


class Upsample(nn.Module):
    """Fixed-size upsampling: bilinear ``align_corners=True`` (``nn.UpsamplingBilinear2d``) or,
    for the Ascend resize rewrite, legacy nearest (``src = floor(dst * in / out)``)."""

    def __init__(self, size: tuple[int, int], nearest: bool = False) -> None:
        super().__init__()
        self.size = size
        self.nearest = nearest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nearest:
            return F.interpolate(x, size=self.size, mode="nearest")
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=True)


def _mask_head(c: int) -> nn.Sequential:
    """``conv1_1_blocks``: BN-ReLU-Conv1x1-BN-ReLU-Conv1x1-Sigmoid."""
    return nn.Sequential(
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=True),
        nn.Conv2d(c, c, 1, bias=False),
        nn.Sigmoid(),
    )


def _pair(c: int) -> nn.Sequential:
    return nn.Sequential(ResidualUnit(c, c), ResidualUnit(c, c))


class AttentionStage1(nn.Module):
    """``AttentionModule_stage1_cifar`` (32×32 in; mask branch at 16 and 8).

    Quirk: the trunk output is added into the mask branch before the sigmoid head.
    """

    def __init__(self, c: int, nearest: bool = False) -> None:
        super().__init__()
        self.first_residual_blocks = ResidualUnit(c, c)
        self.trunk_branches = _pair(c)
        self.mpool1 = nn.MaxPool2d(3, 2, 1)
        self.down_residual_blocks1 = ResidualUnit(c, c)
        self.skip1_connection_residual_block = ResidualUnit(c, c)
        self.mpool2 = nn.MaxPool2d(3, 2, 1)
        self.middle_2r_blocks = _pair(c)
        self.interpolation1 = Upsample((16, 16), nearest)
        self.up_residual_blocks1 = ResidualUnit(c, c)
        self.interpolation2 = Upsample((32, 32), nearest)
        self.conv1_1_blocks = _mask_head(c)
        self.last_blocks = ResidualUnit(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_residual_blocks(x)
        t = self.trunk_branches(x)
        d1 = self.down_residual_blocks1(self.mpool1(x))
        sk = self.skip1_connection_residual_block(d1)
        m = self.middle_2r_blocks(self.mpool2(d1))
        o = (self.interpolation1(m) + d1) + sk
        o = self.interpolation2(self.up_residual_blocks1(o)) + t
        return self.last_blocks((1 + self.conv1_1_blocks(o)) * t)


class AttentionStage2(nn.Module):
    """``AttentionModule_stage2_cifar`` (16×16 in; mask branch at 8). Trunk added into the mask."""

    def __init__(self, c: int, nearest: bool = False) -> None:
        super().__init__()
        self.first_residual_blocks = ResidualUnit(c, c)
        self.trunk_branches = _pair(c)
        self.mpool1 = nn.MaxPool2d(3, 2, 1)
        self.middle_2r_blocks = _pair(c)
        self.interpolation1 = Upsample((16, 16), nearest)
        self.conv1_1_blocks = _mask_head(c)
        self.last_blocks = ResidualUnit(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_residual_blocks(x)
        t = self.trunk_branches(x)
        m = self.middle_2r_blocks(self.mpool1(x))
        o = self.interpolation1(m) + t
        return self.last_blocks((1 + self.conv1_1_blocks(o)) * t)


class AttentionStage3(nn.Module):
    """``AttentionModule_stage3_cifar`` (8×8): no pooling; mask = head(middle blocks(x))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.first_residual_blocks = ResidualUnit(c, c)
        self.trunk_branches = _pair(c)
        self.middle_2r_blocks = _pair(c)
        self.conv1_1_blocks = _mask_head(c)
        self.last_blocks = ResidualUnit(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_residual_blocks(x)
        t = self.trunk_branches(x)
        return self.last_blocks((1 + self.conv1_1_blocks(self.middle_2r_blocks(x))) * t)


class ResidualAttentionModel92(nn.Module):
    """RAN-92 for 32×32 inputs; 10 raw logits. ``mpool2`` is BN+ReLU+AvgPool(8), not a max pool."""

    def __init__(self, num_classes: int = 10, nearest_resize: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.residual_block1 = ResidualUnit(32, 128)
        self.attention_module1 = AttentionStage1(128, nearest_resize)
        self.residual_block2 = ResidualUnit(128, 256, 2)
        self.attention_module2 = AttentionStage2(256, nearest_resize)
        self.attention_module2_2 = AttentionStage2(256, nearest_resize)
        self.residual_block3 = ResidualUnit(256, 512, 2)
        self.attention_module3 = AttentionStage3(512)
        self.attention_module3_2 = AttentionStage3(512)
        self.attention_module3_3 = AttentionStage3(512)
        self.residual_block4 = ResidualUnit(512, 1024)
        self.residual_block5 = ResidualUnit(1024, 1024)
        self.residual_block6 = ResidualUnit(1024, 1024)
        self.mpool2 = nn.Sequential(nn.BatchNorm2d(1024), nn.ReLU(inplace=True), nn.AvgPool2d(8, 8))
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.residual_block1(x)
        x = self.attention_module1(x)
        x = self.residual_block2(x)
        x = self.attention_module2(x)
        x = self.attention_module2_2(x)
        x = self.residual_block3(x)
        x = self.attention_module3(x)
        x = self.attention_module3_2(x)
        x = self.attention_module3_3(x)
        x = self.residual_block4(x)
        x = self.residual_block5(x)
        x = self.residual_block6(x)
        x = self.mpool2(x)
        return self.fc(torch.flatten(x, 1))


def ran92_cifar10(*, nearest_resize: bool = False) -> ResidualAttentionModel92:
    """RAN-92 (CIFAR-10, 19,920,362 params of which 12,170,730 are used).

    ``nearest_resize=True`` reproduces Ascend's ``resize_optimize.py`` rewrite (docs/models.md §5.5):
    every upsample becomes torch legacy nearest. It changes the logits on purpose (Ascend's 95.34%
    was measured with it) and is never applied by default.
    """
    return ResidualAttentionModel92(nearest_resize=nearest_resize)


def rewrite_resize_nearest(model_proto: onnx.ModelProto) -> int:
    """Apply Ascend's ``resize_optimize.py`` edit in place to an exported graph.

    Every ``Resize`` node gets ``mode="nearest"`` and ``coordinate_transformation_mode="asymmetric"``;
    ``nearest_mode`` is kept (the exporter writes ``"floor"``), which together equal torch's legacy
    nearest, ``src = floor(dst * in / out)``. Returns the number of nodes rewritten.
    """
    import onnx

    def set_str_attr(node: onnx.NodeProto, name: str, value: str) -> None:
        for attr in node.attribute:
            if attr.name == name:
                node.attribute.remove(attr)
                break
        node.attribute.append(onnx.helper.make_attribute(name, value))

    def walk(graph: onnx.GraphProto) -> int:
        n = 0
        for node in graph.node:
            if node.op_type == "Resize":
                set_str_attr(node, "mode", "nearest")
                set_str_attr(node, "coordinate_transformation_mode", "asymmetric")
                if not any(a.name == "nearest_mode" for a in node.attribute):
                    set_str_attr(node, "nearest_mode", "floor")
                n += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    n += walk(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    n += sum(walk(g) for g in attr.graphs)
        return n

    return walk(model_proto.graph)
