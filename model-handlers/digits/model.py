"""Architecture of the digits classifier: a small CNN over 8x8 grayscale images."""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIDE = 8
PIXELS = IMAGE_SIDE * IMAGE_SIDE
MAX_PIXEL = 16.0  # scikit-learn's digits are 4-bit intensities, 0..16
CLASSES = 10


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and two dense layers (about 40k parameters).

    Takes raw pixel values (``[N, 64]`` or ``[N, 8, 8]``, 0..16) and scales them itself, so training
    and serving cannot disagree on preprocessing. Returns logits ``[N, 10]``.
    """

    def __init__(self, channels: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(2 * channels * (IMAGE_SIDE // 2) ** 2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, CLASSES),
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        images = pixels.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE) / MAX_PIXEL
        return self.classifier(self.features(images))


def build_model() -> DigitsCNN:
    """The architecture the weights were trained for."""
    return DigitsCNN()
