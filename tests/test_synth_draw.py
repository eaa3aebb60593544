"""Procedural masks and occluders: geometry per placement, roll, determinism, styles, occluders, sample grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from maskwatch.synth.draw import (
    CELL,
    LABEL_H,
    OCCLUDERS,
    PALETTE,
    PATTERNS,
    PLACEMENTS,
    STYLES,
    draw_mask,
    draw_occluder,
    sample_grid,
)

BOX = np.array([50, 40, 150, 170], np.float32)
LMS = np.array([(80, 90), (120, 90), (100, 115), (85, 140), (115, 140)], np.float32)


def face_image() -> Image.Image:
    """A 200x200 face-like picture: shaded skin ellipse, dark eyes, a nose and a mouth."""
    yy, xx = np.mgrid[:200, :200].astype(np.float32)
    img = np.empty((200, 200, 3), np.float32)
    img[:] = (70, 90, 120)
    face = ((xx - 100) / 50) ** 2 + ((yy - 105) / 65) ** 2 < 1
    light = 0.8 + 0.3 * (200 - xx) / 200
    img[face] = (np.array([205, 160, 130], np.float32)[None] * light[face][:, None]).clip(0, 255)
    for ex in (80, 120):
        img[(xx - ex) ** 2 + (yy - 90) ** 2 < 25] = [40, 30, 30]
    img[(np.abs(xx - 100) < 4) & (yy > 100) & (yy < 117)] *= 0.8
    img[(np.abs(yy - 140) < 2) & (xx > 85) & (xx < 115)] = [150, 60, 60]
    return Image.fromarray(img.astype(np.uint8))


def at(alpha: np.ndarray, p: np.ndarray) -> float:
    return float(alpha[round(float(p[1])), round(float(p[0]))])


def mask_alpha(placement: str, seed: int = 0, style: str = "surgical", lms: np.ndarray = LMS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    _, alpha = draw_mask(
        face_image(), BOX, lms, style=style, placement=placement, color=PALETTE["light_blue"], pattern="plain", rng=rng
    )
    return alpha


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placement_geometry(style: str, seed: int) -> None:
    nose, ml, mr = LMS[2], LMS[3], LMS[4]
    a = mask_alpha("correct", seed, style)
    assert a.dtype == np.float32 and a.shape == (200, 200) and a.min() >= 0 and a.max() <= 1
    assert at(a, nose) > 0.5 and at(a, ml) > 0.5 and at(a, mr) > 0.5
    assert at(a, LMS[0]) < 0.1 and at(a, LMS[1]) < 0.1
    a = mask_alpha("under_nose", seed, style)
    assert at(a, nose) < 0.5 and at(a, ml) > 0.5 and at(a, mr) > 0.5 and at(a, (ml + mr) / 2) > 0.5
    a = mask_alpha("on_chin", seed, style)
    assert at(a, nose) < 0.5 and at(a, ml) < 0.5 and at(a, mr) < 0.5 and at(a, (ml + mr) / 2) < 0.5
    assert at(a, np.array([100, 165])) > 0.5  # the chin is covered
    a = mask_alpha("slipped_side", seed, style)
    assert at(a, nose) < 0.5 or min(at(a, ml), at(a, mr)) < 0.5
    assert a.sum() > 500  # still a mask on the face


def test_roll_rotates_the_mask() -> None:
    center = np.array([100.0, 105.0])
    t = math.radians(20)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lms = (LMS - center) @ rot.T + center
    for seed in range(3):
        a = mask_alpha("correct", seed, lms=lms)
        assert at(a, lms[2]) > 0.5 and at(a, lms[3]) > 0.5 and at(a, lms[4]) > 0.5
        assert at(a, lms[0]) < 0.1 and at(a, lms[1]) < 0.1


def test_yaw_shifts_the_mask() -> None:
    lms = LMS.copy()
    lms[2, 0] += 12  # nose turned toward image-right
    a = mask_alpha("correct", lms=lms)
    assert at(a, lms[2]) > 0.5
    cols = np.nonzero(a.max(axis=0) > 0.5)[0]
    cols0 = np.nonzero(mask_alpha("correct").max(axis=0) > 0.5)[0]
    assert cols.max() - lms[2, 0] < lms[2, 0] - cols.min()  # the far side (where the nose points) is narrower
    assert cols.max() - cols.min() < cols0.max() - cols0.min()  # foreshortened overall
    assert cols.min() >= BOX[0] - 8 and cols.max() <= BOX[2] + 8  # stays on the face


def test_determinism() -> None:
    img = face_image()

    def run(seed: int) -> np.ndarray:
        out, _ = draw_mask(
            img, BOX, LMS, style="cloth", placement="correct", color=PALETTE["red"], pattern="print",
            rng=np.random.default_rng(seed),
        )  # fmt: skip
        return np.asarray(out)

    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))
    occ = [np.asarray(draw_occluder(img, BOX, LMS, kind="hand", rng=np.random.default_rng(s))[0]) for s in (5, 5, 6)]
    assert np.array_equal(occ[0], occ[1]) and not np.array_equal(occ[0], occ[2])


@pytest.mark.parametrize("style", STYLES)
def test_styles_patterns_change_only_covered_pixels(style: str) -> None:
    img = face_image()
    src = np.asarray(img)
    rng = np.random.default_rng(0)
    for pattern in PATTERNS:
        for color in ("white", "black", "pink", "navy"):
            for placement in PLACEMENTS:
                out, alpha = draw_mask(
                    img, BOX, LMS, style=style, placement=placement, color=PALETTE[color], pattern=pattern, rng=rng
                )
                arr = np.asarray(out)
                assert out.mode == "RGB" and arr.shape == src.shape
                assert np.array_equal(arr[alpha == 0], src[alpha == 0])
                assert np.any(arr != src)


def test_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    img = face_image()
    with pytest.raises(ValueError):
        draw_mask(img, BOX, LMS, style="bandana", placement="correct", color=(1, 2, 3), pattern="plain", rng=rng)
    with pytest.raises(ValueError):
        draw_mask(img, BOX, LMS, style="cloth", placement="forehead", color=(1, 2, 3), pattern="plain", rng=rng)
    with pytest.raises(ValueError):
        draw_occluder(img, BOX, LMS, kind="helmet", rng=rng)


@pytest.mark.parametrize("kind", OCCLUDERS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_occluders_cover_mouth_not_eyes(kind: str, seed: int) -> None:
    img = face_image()
    out, a = draw_occluder(img, BOX, LMS, kind=kind, rng=np.random.default_rng(seed))
    assert at(a, (LMS[3] + LMS[4]) / 2) > 0.5
    assert at(a, LMS[0]) < 0.1 and at(a, LMS[1]) < 0.1
    src = np.asarray(img)
    assert np.array_equal(np.asarray(out)[a == 0], src[a == 0])


def test_sample_grid_size() -> None:
    grid = sample_grid(face_image(), BOX, LMS, seed=0)
    rows = len(STYLES) + math.ceil((1 + len(OCCLUDERS)) / len(PLACEMENTS))
    assert grid.size == (len(PLACEMENTS) * CELL, rows * (CELL + LABEL_H))


def donor_image(color: tuple[int, int, int] = (200, 20, 20)) -> Image.Image:
    """The test face wearing a flat-coloured mask from just below the eyes to below the chin."""
    img = np.asarray(face_image()).copy()
    img[98:185, 48:153] = color
    return Image.fromarray(img)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transplant_moves_the_donors_mask(seed: int) -> None:
    """A real mask moved onto a face: the donor's cloth (known colour) lands where the placement puts a mask;
    a correctly worn one covers the nose, the wrong ones leave it visible."""
    from maskwatch.synth.draw import draw_transplant

    nose, ml, mr = LMS[2], LMS[3], LMS[4]
    bare = np.asarray(face_image(), np.float32)
    for placement in PLACEMENTS:
        img, a = draw_transplant(
            face_image(),
            BOX,
            LMS,
            donor=donor_image(),
            donor_box=BOX,
            donor_landmarks=LMS,
            placement=placement,
            rng=np.random.default_rng(seed),
        )
        out = np.asarray(img, np.float32)
        assert a.shape == (200, 200) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
        assert at(a, LMS[0]) < 0.1 and at(a, LMS[1]) < 0.1
        assert np.abs(out[a == 0] - bare[a == 0]).max() == 0  # nothing outside the mask changes
        covered = a > 0.95
        mean = out[covered].mean(axis=0)
        assert mean[0] > 150 and mean[1] < 80 and mean[2] < 80, (placement, mean)  # the donor's red cloth
        if placement == "correct":
            assert at(a, nose) > 0.5 and at(a, ml) > 0.5 and at(a, mr) > 0.5
        elif placement == "under_nose":
            assert at(a, nose) < 0.5 and at(a, (ml + mr) / 2) > 0.5
        elif placement == "on_chin":
            assert at(a, nose) < 0.5 and at(a, (ml + mr) / 2) < 0.5
        else:
            assert at(a, nose) < 0.5 or min(at(a, ml), at(a, mr)) < 0.5


def test_transplant_follows_the_donors_scale_and_the_faces_brightness() -> None:
    """A donor photographed twice as large gives the same mask; a darker face gets a darker mask."""
    from maskwatch.synth.draw import draw_transplant

    def grey_mask(face: Image.Image, donor: Image.Image, box: np.ndarray, lms: np.ndarray) -> float:
        img, a = draw_transplant(
            face, BOX, LMS, donor=donor, donor_box=box, donor_landmarks=lms, placement="correct",
            rng=np.random.default_rng(0),
        )  # fmt: skip
        return float(np.asarray(img.convert("L"), np.float32)[a > 0.95].mean())

    donor = donor_image((120, 120, 120))
    big = donor.resize((400, 400), Image.BILINEAR)
    small_v = grey_mask(face_image(), donor, BOX, LMS)
    big_v = grey_mask(face_image(), big, BOX * 2, LMS * 2)
    assert abs(small_v - big_v) < 3
    dark = Image.fromarray((np.asarray(face_image(), np.float32) * 0.5).astype(np.uint8))
    assert grey_mask(dark, donor, BOX, LMS) < small_v - 15
