"""Canonical labels, the aliases data sets use for them, and their display colours.

Inside maskwatch a label is always one of the canonical names (or, for data sets with other
classes, the normalised folder name). Aliases are mapped here, at the edge, and nowhere deeper.
"""

from __future__ import annotations

from collections.abc import Iterable

WITH_MASK = "with_mask"
WITHOUT_MASK = "without_mask"
MASK_WORN_INCORRECTLY = "mask_worn_incorrectly"
CANONICAL_LABELS: tuple[str, ...] = (WITH_MASK, WITHOUT_MASK, MASK_WORN_INCORRECTLY)

_ALIASES: dict[str, tuple[str, ...]] = {
    WITH_MASK: ("with_mask", "withmask", "mask", "masked", "face_mask", "mask_on", "wearing_mask", "with_masks"),
    WITHOUT_MASK: (
        "without_mask",
        "withoutmask",
        "no_mask",
        "nomask",
        "unmasked",
        "no_face_mask",
        "mask_off",
        "not_masked",
        "without_masks",
        "bare_face",
    ),
    MASK_WORN_INCORRECTLY: (
        "mask_worn_incorrectly",
        "mask_weared_incorrect",
        "mask_wore_incorrect",
        "with_incorrect_mask",
        "incorrect_mask",
        "mask_incorrect",
        "incorrectly_worn_mask",
        "mask_worn_incorrect",
        "improperly_worn_mask",
        "improper_mask",
        "incorrect",
        "partial_mask",
        "mask_incorrectly_worn",
    ),
}
ALIASES: dict[str, str] = {alias: label for label, names in _ALIASES.items() for alias in names}

# RGB colours used by every plot and annotation.
LABEL_COLORS: dict[str, tuple[int, int, int]] = {
    WITH_MASK: (46, 160, 67),
    WITHOUT_MASK: (218, 54, 51),
    MASK_WORN_INCORRECTLY: (240, 160, 20),
}
_FALLBACK_COLORS = [(31, 119, 180), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def normalise_name(name: str) -> str:
    """Lower-case a class name and join its words with underscores."""
    key = name.strip().lower()
    for ch in "- .":
        key = key.replace(ch, "_")
    while "__" in key:
        key = key.replace("__", "_")
    return key.strip("_")


def canonical_label(name: str) -> str:
    """Map a data set's class name to maskwatch's label (unknown names are kept, normalised)."""
    key = normalise_name(name)
    return ALIASES.get(key, key)


def order_labels(labels: Iterable[str]) -> list[str]:
    """Canonical labels first, in canonical order, then any others alphabetically."""
    unique = set(labels)
    head = [label for label in CANONICAL_LABELS if label in unique]
    return head + sorted(unique - set(CANONICAL_LABELS))


def label_color(label: str) -> tuple[int, int, int]:
    if label in LABEL_COLORS:
        return LABEL_COLORS[label]
    return _FALLBACK_COLORS[sum(map(ord, label)) % len(_FALLBACK_COLORS)]
