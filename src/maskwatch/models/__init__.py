"""Model registry: the study's nets and timm backbones behind one ``create_model``."""

from maskwatch.models.registry import DEFAULT_MODEL, MaskNet, ModelSpec, create_model, get_spec, list_models

__all__ = ["DEFAULT_MODEL", "MaskNet", "ModelSpec", "create_model", "get_spec", "list_models"]
