"""The PyTorch view of a data set: samples as (tensor, class index[, weight]) through a transform."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image

from maskwatch.data.dataset import Sample
from maskwatch.data.images import open_rgb


class ImageDataset(torch.utils.data.Dataset):
    """Samples as (tensor, class index) pairs through a transform; with ``weights`` (one per sample), (tensor,
    class index, weight) triples."""

    def __init__(
        self,
        samples: Sequence[Sample],
        labels: Sequence[str],
        transform: Callable[[Image.Image], torch.Tensor],
        weights: Sequence[float] | None = None,
    ):
        self.samples = list(samples)
        self.class_to_idx = {label: i for i, label in enumerate(labels)}
        self.transform = transform
        if weights is not None and len(weights) != len(self.samples):
            raise ValueError("one weight per sample")
        self.weights = None if weights is None else [float(w) for w in weights]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, float]:
        sample = self.samples[i]
        item = self.transform(open_rgb(sample.path)), self.class_to_idx[sample.label]
        return item if self.weights is None else (*item, self.weights[i])
