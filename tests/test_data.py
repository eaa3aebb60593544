from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import add_broken_files, make_voc
from maskwatch.data import load_data
from maskwatch.data.crops import crop_square, square_box
from maskwatch.data.images import BadImageError, open_rgb
from maskwatch.errors import MaskwatchError


def test_class_folders_load_with_counts(toy_data):
    bundle = load_data([toy_data])
    assert bundle.counts() == {"with_mask": 16, "without_mask": 16}
    assert bundle.problems == []
    assert all(s.path.is_file() and s.source == s.path for s in bundle.samples)


def test_broken_files_are_skipped_and_listed(toy_data):
    expected = add_broken_files(toy_data)
    bundle = load_data([toy_data])
    assert bundle.counts() == {"with_mask": 16, "without_mask": 16}
    reasons = {p.path.name: p.reason for p in bundle.problems}
    assert set(reasons) == set(expected)
    for name, prefix in expected.items():
        assert reasons[name].startswith(prefix), (name, reasons[name])


def test_a_file_named_as_data_set_is_called_a_file(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"x")
    with pytest.raises(MaskwatchError, match=r"photo\.jpg: is a file, not a data set folder"):
        load_data([tmp_path / "photo.jpg"])
    with pytest.raises(MaskwatchError, match=r"data set folder not found: .*missing"):
        load_data([tmp_path / "missing"])


def test_open_rgb_reasons(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(BadImageError, match="zero-byte"):
        open_rgb(tmp_path / "a.jpg")
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    assert open_rgb(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)  # transparency -> white


def test_open_rgb_takes_photos_over_pillows_warning_limit(tmp_path):
    """A local photo over Pillow's 89-Mpx warning (a 108-Mpx phone photo) opens; past Pillow's hard limit it is
    skipped with its reason."""
    side = int(Image.MAX_IMAGE_PIXELS**0.5) + 10  # just over the warning limit
    Image.new("1", (side, side)).save(tmp_path / "big.png")
    assert open_rgb(tmp_path / "big.png").size == (side, side)
    huge = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 10  # over the hard limit
    Image.new("1", (huge, huge)).save(tmp_path / "huge.png")
    with pytest.raises(BadImageError, match="too many pixels"):
        open_rgb(tmp_path / "huge.png")


def _gray_row(image: Image.Image) -> list[int]:
    rgb = np.asarray(image)
    assert image.mode == "RGB" and rgb.dtype == np.uint8
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()  # gray stays gray
    return rgb[0, :, 0].tolist()


@pytest.mark.parametrize(("name", "dtype", "mode"), [("g.png", np.uint16, "I;16"), ("g.tif", ">u2", "I;16B")])
def test_16_bit_gray_is_scaled_not_clipped(tmp_path, name, dtype, mode):
    """A 16-bit photo keeps its tones (high byte), rather than turning white (A2)."""
    ramp = np.array([[0, 255, 256, 257 * 100, 32768, 65280, 65535]], dtype=dtype)
    Image.fromarray(ramp).save(tmp_path / name)
    with Image.open(tmp_path / name) as img:
        assert img.mode == mode
    assert _gray_row(open_rgb(tmp_path / name)) == [0, 0, 1, 100, 128, 255, 255]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 100, 255], [0, 100, 255]),  # 8-bit values held in 32 bits: as they are
        ([0, 256, 25700, 65535], [0, 1, 100, 255]),  # 16-bit values: the high byte
        ([-1000, 0, 1000], [0, 128, 255]),  # anything else: stretched from its minimum to its maximum
    ],
)
def test_32_bit_integer_image(tmp_path, values, expected):
    Image.fromarray(np.array([values], dtype=np.int32)).save(tmp_path / "i.tif")
    assert _gray_row(open_rgb(tmp_path / "i.tif")) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.25, 0.5, 1.0], [0, 64, 128, 255]),  # 0..1 floats scale to 0..255
        ([0.0, 2.0, 100.4, 255.0], [0, 2, 100, 255]),  # 0..255 floats: rounded
        ([-1.0, 0.0, 3.0], [0, 64, 255]),  # anything else: stretched from its minimum to its maximum
    ],
)
def test_float_image(tmp_path, values, expected):
    Image.fromarray(np.array([values], dtype=np.float32)).save(tmp_path / "f.tif")
    assert _gray_row(open_rgb(tmp_path / "f.tif")) == expected


def test_half_transparent_pixels_are_composited_on_white(tmp_path):
    Image.new("RGBA", (2, 2), (200, 100, 0, 128)).save(tmp_path / "t.png")
    # each channel: c * 128/255 + 255 * 127/255
    assert open_rgb(tmp_path / "t.png").getpixel((1, 1)) == (227, 177, 127)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 30), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 10, 30))  # a red band on the left edge as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = open_rgb(tmp_path / "r.jpg")
    assert out.size == (30, 60)
    r, _, b = out.getpixel((15, 3))  # the left band is now along the top
    assert r > 200 and b < 60
    r, _, b = out.getpixel((15, 50))
    assert b > 200 and r < 60


def test_folder_aliases_and_combined_sets(tmp_path, toy_data):
    other = tmp_path / "other"
    (other / "mask_weared_incorrect").mkdir(parents=True)
    Image.new("RGB", (20, 20), (9, 9, 9)).save(other / "mask_weared_incorrect" / "x.png")
    bundle = load_data([toy_data, other])
    assert bundle.labels == ["with_mask", "without_mask", "mask_worn_incorrectly"]
    assert len(bundle.datasets) == 2


def test_missing_or_empty_data_is_one_clear_error(tmp_path):
    with pytest.raises(MaskwatchError, match="not found"):
        load_data([tmp_path / "nope"])
    (tmp_path / "empty" / "with_mask").mkdir(parents=True)
    with pytest.raises(MaskwatchError, match="no usable images"):
        load_data([tmp_path / "empty"])


def test_square_box_and_crop():
    assert square_box([10, 20, 30, 60], 0.0) == (0, 20, 40, 60)  # longer side 40, centred
    assert square_box([10, 20, 30, 60], 0.25) == (-10, 10, 50, 70)  # side 40 * 1.5 = 60 around (20, 40)
    img = Image.new("RGB", (50, 50), (200, 0, 0))
    crop = crop_square(img, [0, 0, 20, 20], 0.5)
    assert crop.size == (40, 40)
    assert crop.getpixel((0, 0)) == (0, 0, 0)  # outside the image: black
    assert crop.getpixel((20, 20)) == (200, 0, 0)


def test_voc_crops_are_square_classed_and_cached(tmp_path):
    root = make_voc(tmp_path / "voc", n_images=3)
    bundle = load_data([root], margin=0.1, min_box=12)
    info = bundle.datasets[0]
    assert info["kind"] == "voc" and info["boxes"] == 12 and info["skipped_small"] == 3
    assert bundle.counts() == {"with_mask": 3, "without_mask": 3, "mask_worn_incorrectly": 3}
    for s in bundle.samples:
        with Image.open(s.path) as im:
            assert im.size == (48, 48)  # 40 * (1 + 2 * 0.1)
        assert s.source.name.startswith("scene") and "#" in s.id
    mtimes = {s.path: s.path.stat().st_mtime_ns for s in bundle.samples}
    again = load_data([root], margin=0.1, min_box=12)
    assert again.datasets[0]["from_cache"] is True
    assert [s.id for s in again.samples] == [s.id for s in bundle.samples]
    assert all(s.path.stat().st_mtime_ns == mtimes[s.path] for s in again.samples)
    # other parameters make other crops
    wider = load_data([root], margin=0.3, min_box=4)
    assert wider.datasets[0]["from_cache"] is False and wider.datasets[0]["skipped_small"] == 0


def test_voc_bad_annotation_is_reported(tmp_path):
    root = make_voc(tmp_path / "voc", n_images=2)
    (root / "annotations" / "broken.xml").write_text("<annotation><filename>")
    (root / "annotations" / "ghost.xml").write_text("<annotation><filename>ghost.png</filename></annotation>")
    bundle = load_data([root])
    reasons = {Path(p.path).name: p.reason for p in bundle.problems}
    assert reasons["broken.xml"].startswith("bad annotation XML")
    assert "does not exist" in reasons["ghost.xml"]
    assert len(bundle.samples) == 6


def test_duplicate_thresholds_are_range_checked(toy_data):
    from maskwatch.data.duplicates import find_duplicates

    bundle = load_data([toy_data])
    for threshold in (-5, -1, 33, 64, 100, 2.5):
        with pytest.raises(MaskwatchError, match=r"^--dup-threshold must be .* from 0 to 32"):
            find_duplicates(bundle.samples, bundle.index, threshold)
    for embed in (-0.1, 1.5, float("nan")):
        with pytest.raises(MaskwatchError, match=r"^--dup-embed must be a cosine similarity in \(0, 1\]"):
            find_duplicates(bundle.samples, bundle.index, 8, embed_threshold=embed)
    for threshold in (0, 32):  # the ends of the range are accepted
        assert find_duplicates(bundle.samples, bundle.index, threshold).group_of
