"""The study's own networks, rebuilt in PyTorch: its custom CNN and its hand-built Inception net."""

from __future__ import annotations

import torch
from torch import nn


class StudyCNNFeatures(nn.Sequential):
    """conv32 3x3 - maxpool - conv64 3x3 - maxpool - maxpool - flatten (the study's layers)."""

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(3, 32, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )


def study_cnn(num_classes: int, input_size: int, dropout: float = 0.5) -> tuple[nn.Module, nn.Module, int]:
    """(backbone, head, feature size): dense128 - dropout - dense64 - dropout - dense out."""
    backbone = StudyCNNFeatures()
    with torch.no_grad():
        n = backbone(torch.zeros(1, 3, input_size, input_size)).shape[1]
    head = nn.Sequential(
        nn.Linear(n, 128),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(128, 64),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(64, num_classes),
    )
    return backbone, head, n


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )


class InceptionModule(nn.Module):
    """Inception-v1 block: 1x1 | 1x1-3x3 | 1x1-5x5 | 3x3 maxpool-1x1, concatenated."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, cp: int) -> None:
        super().__init__()
        self.b1 = ConvBNReLU(cin, c1, 1)
        self.b3 = nn.Sequential(ConvBNReLU(cin, c3r, 1), ConvBNReLU(c3r, c3, 3))
        self.b5 = nn.Sequential(ConvBNReLU(cin, c5r, 1), ConvBNReLU(c5r, c5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBNReLU(cin, cp, 1))
        self.out_channels = c1 + c3 + c5 + cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


class InceptionMiniFeatures(nn.Module):
    """7x7 stem, two stages of Inception modules, global average pooling (a small GoogLeNet)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvBNReLU(3, 64, 7, stride=2),
            nn.MaxPool2d(3, 2, 1),
            ConvBNReLU(64, 64, 1),
            ConvBNReLU(64, 128, 3),
            nn.MaxPool2d(3, 2, 1),
        )
        a = InceptionModule(128, 32, 48, 64, 8, 16, 16)  # 128
        b = InceptionModule(a.out_channels, 64, 64, 96, 16, 48, 32)  # 240
        c = InceptionModule(b.out_channels, 96, 48, 104, 8, 24, 32)  # 256
        d = InceptionModule(c.out_channels, 80, 56, 112, 12, 32, 32)  # 256
        self.blocks = nn.Sequential(a, b, nn.MaxPool2d(3, 2, 1), c, d)
        self.out_channels = d.out_channels
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x)))


def inception_mini(num_classes: int, input_size: int, dropout: float = 0.4) -> tuple[nn.Module, nn.Module, int]:
    backbone = InceptionMiniFeatures()
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.out_channels, num_classes))
    return backbone, head, backbone.out_channels
