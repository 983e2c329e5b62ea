"""sMLPNet-T (microsoft/SPACH@b11b0989 ``models/smlp.py``), docs/models.md §4.

Attribute names mirror the published ``smlp_t.pth`` keys, including the typo ``proh_w``.
The token-mixing permutes follow upstream SPACH, not Ascend's later ``reshape`` training port,
which computes a different function (§4.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DWConvBlock", "FeedForward", "SMLPNet", "SparseMLPBlock", "smlpnet_tiny"]


class Permute(nn.Module):
    """Parameter-free axis permutation; stands in for einops ``Rearrange`` at its Sequential index."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)


class BNActivConv(nn.Module):
    """Pre-activation unit: BN -> exact GELU -> conv (no bias).

    Upstream padding is ``int((d*(k-1) - s + 1) / 2)``, i.e. 1 for the 3x3, stride-1 depthwise conv.
    """

    def __init__(self, channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        padding = int((kernel_size - 1 - stride + 1) / 2)
        self.BN = nn.BatchNorm2d(channels)
        self.Activation = nn.GELU()
        self.Conv = nn.Conv2d(channels, channels, kernel_size, stride, padding, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.Conv(self.Activation(self.BN(x)))


class DWConvBlock(nn.Module):
    """Depthwise 3x3 conv behind a pre-activation BN + GELU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_merge = BNActivConv(channels, 3, 1, groups=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_merge(x)


class SparseMLPBlock(nn.Module):
    """Sparse MLP token mixing on a square ``grid`` x ``grid`` map (upstream ``sMLPBlock``).

    Quirks kept on purpose (§4.4): ``proj_h`` mixes along **W** and ``proh_w`` along **H**
    (the names say the opposite), and the concat uses ``g = GELU(BN(x))``, not the block input,
    in channel order ``g, gh, gw``.
    """

    def __init__(self, grid: int, channels: int) -> None:
        super().__init__()
        self.BN = nn.BatchNorm2d(channels)
        self.activation = nn.GELU()
        self.proj_h = nn.Conv2d(grid, grid, 1)
        self.proh_w = nn.Conv2d(grid, grid, 1)
        self.fuse = nn.Conv2d(channels * 3, channels, 1, bias=False)

    def mix(self, g: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(gh, gw)`` from ``g`` with upstream's exact permute order."""
        gh = self.proj_h(g.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (N,W,C,H) -> conv over W
        gw = self.proh_w(g.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)  # (N,H,C,W) -> conv over H
        return gh, gw

    def forward(self, x: Tensor) -> Tensor:
        g = self.activation(self.BN(x))
        gh, gw = self.mix(g)
        return self.fuse(torch.cat([g, gh, gw], dim=1))


class FeedForward(nn.Module):
    """Channel MLP on NHWC tensors: Linear -> exact GELU -> Linear (Dropout(0) keeps indices 2, 4)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(0.0),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SMLPNet(nn.Module):
    """sMLPNet: patch-merging convs, then per block ``x += token_mix(x); x += channel_mix(x)``.

    There is no norm after the patch embeddings; the head is BN -> spatial mean -> Linear.
    Each sparse-MLP block is sized for its square grid, so the input must be ``image_size`` square.
    """

    def __init__(
        self,
        dim: int = 80,
        alpha: int = 3,
        patch_size: int = 4,
        depths: tuple[int, ...] = (2, 8, 14, 2),
        in_chans: int = 3,
        num_classes: int = 1000,
        image_size: int = 224,
    ) -> None:
        super().__init__()
        self.depths = tuple(depths)
        self.image_size = image_size
        grid = image_size // patch_size
        channels = dim
        self.to_patch_embedding = nn.ModuleList()
        self.token_mix = nn.ModuleList()
        self.channel_mix = nn.ModuleList()
        self.drop_path = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            if i == 0:
                embed = nn.Conv2d(in_chans, channels, patch_size, patch_size, bias=False)
            else:
                embed = nn.Conv2d(channels // 2, channels, 2, 2, bias=False)
            self.to_patch_embedding.append(nn.Sequential(embed))
            for _ in range(depth):
                self.token_mix.append(nn.Sequential(DWConvBlock(channels), SparseMLPBlock(grid, channels)))
                self.channel_mix.append(
                    nn.Sequential(
                        Permute(0, 2, 3, 1),
                        nn.LayerNorm(channels),
                        FeedForward(channels, channels * alpha),
                        Permute(0, 3, 1, 2),
                    )
                )
                self.drop_path.append(nn.Identity())
            if i + 1 < len(self.depths):
                channels *= 2
                grid //= 2
        self.batch_norm = nn.BatchNorm2d(channels)
        self.mlp_head = nn.Sequential(nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        k = 0
        for i, depth in enumerate(self.depths):
            x = self.to_patch_embedding[i](x)
            for _ in range(depth):
                x = x + self.drop_path[k](self.token_mix[k](x))
                x = x + self.drop_path[k](self.channel_mix[k](x))
                k += 1
        x = self.batch_norm(x)
        x = x.mean(dim=(2, 3))
        return self.mlp_head(x)


def smlpnet_tiny(*, num_classes: int = 1000) -> SMLPNet:
    """sMLPNet-T (SPACH registry): dim 80, alpha 3, patch 4, depths [2, 8, 14, 2]; 224x224 input only."""
    return SMLPNet(dim=80, alpha=3, patch_size=4, depths=(2, 8, 14, 2), num_classes=num_classes)
