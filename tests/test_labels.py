from maskwatch.labels import MASK_WORN_INCORRECTLY, WITH_MASK, WITHOUT_MASK, canonical_label, order_labels


def test_aliases_map_to_canonical_labels():
    assert canonical_label("mask_weared_incorrect") == MASK_WORN_INCORRECTLY
    assert canonical_label("With Incorrect Mask") == MASK_WORN_INCORRECTLY
    assert canonical_label("with-mask") == WITH_MASK
    assert canonical_label("WithoutMask") == WITHOUT_MASK
    assert canonical_label("no_mask") == WITHOUT_MASK


def test_unknown_names_are_kept_normalised():
    assert canonical_label("Face Shield") == "face_shield"


def test_order_puts_canonical_labels_first():
    assert order_labels(["zebra", WITHOUT_MASK, MASK_WORN_INCORRECTLY, WITH_MASK, "apple"]) == [
        WITH_MASK,
        WITHOUT_MASK,
        MASK_WORN_INCORRECTLY,
        "apple",
        "zebra",
    ]
