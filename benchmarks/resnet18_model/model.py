"""Architecture of the benchmark's ResNet-18-sized CNN (torchvision's ResNet-18 layout, written out here).

torchvision is not a dependency, so the network is defined in this file: a 7x7/2 stem with max-pool,
four stages of two basic blocks (64, 128, 256, 512 channels, stride 2 from the second stage on),
global average pooling and a 1000-way linear layer: 11.7 M parameters, 1.8 GFLOPs at 224x224.

Input: uint8-range pixels ``[N, 3, S, S]`` (0..255, channels first). The side ``S`` is fixed per package
by ``input.json`` next to this file (``{"side": 224}``; 224 when the file is absent), so a server
refuses other sizes instead of mixing them in one batch. The model scales and normalises the pixels
itself (ImageNet mean and standard deviation), like the digits model does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

CHANNELS = 3
CLASSES = 1000
MAX_PIXEL = 255.0
DEFAULT_SIDE = 224
INPUT_FILE = Path(__file__).resolve().parent / "input.json"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def image_side() -> int:
    """The input side this package serves (``input.json``), 224 by default."""
    if INPUT_FILE.is_file():
        return int(json.loads(INPUT_FILE.read_text())["side"])
    return DEFAULT_SIDE


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (projected when the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2015, torchvision's layout); returns logits ``[N, 1000]``."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * MAX_PIXEL, persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * MAX_PIXEL, persistent=False)
        self.stem = nn.Sequential(
            nn.Conv2d(CHANNELS, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        inputs = 64
        for index, outputs in enumerate((64, 128, 256, 512)):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)))
            inputs = outputs
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels - self.mean) / self.std
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def build_model() -> ResNet18:
    """The architecture (weights come from ``train.py``: a fixed-seed random initialisation)."""
    return ResNet18()
