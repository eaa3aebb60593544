"""Reading images safely: every failure becomes a short reason, never a crash."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif"})


class BadImageError(Exception):
    """An image file that cannot be used; ``reason`` says why in a few words."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class ImageTooLargeError(BadImageError):
    """An image with more pixels than allowed (a limit, or Pillow's decompression-bomb guard)."""


# A file on the user's own disk may have as many pixels as Pillow opens at all (just under twice its
# MAX_IMAGE_PIXELS: a 108-megapixel phone photo is fine); uploads to the server get their own, lower limit.
LOCAL_MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS - 1


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def open_rgb(path: str | Path) -> Image.Image:
    """Open an image fully decoded, EXIF-rotated, in RGB; raise ``BadImageError`` with a reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadImageError(path, f"cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise BadImageError(path, "zero-byte file")
    return _decode(path, path, max_pixels=LOCAL_MAX_PIXELS)


def decode_rgb(data: bytes, name: str = "upload", *, max_pixels: int | None = None) -> Image.Image:
    """``open_rgb`` for bytes in memory (an upload); images over ``max_pixels`` are refused before decoding."""
    if not data:
        raise BadImageError(name, "zero-byte file")
    return _decode(io.BytesIO(data), name, max_pixels=max_pixels)


def _decode(source: Path | io.BytesIO, name: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow's own guard (a warning over MAX_IMAGE_PIXELS, an error over twice that) stands where the caller
            # sets no limit; a caller's max_pixels replaces the warning (ServeSettings keeps it under the error).
            warnings.simplefilter("ignore" if max_pixels is not None else "error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageTooLargeError(name, f"too many pixels ({w}x{h} = {w * h:,} pixels > {max_pixels:,})")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except UnidentifiedImageError:
        raise BadImageError(name, "not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(name, f"too many pixels (over {max_pixels or Image.MAX_IMAGE_PIXELS:,})") from None
    except OSError as exc:
        text = str(exc)
        reason = "truncated image" if "truncated" in text.lower() else f"unreadable image ({text})"
        raise BadImageError(name, reason) from None
    except (ValueError, SyntaxError, IndexError, TypeError, struct.error, ZeroDivisionError) as exc:
        raise BadImageError(name, f"corrupt image ({exc})") from None  # Pillow raises these on corrupt headers


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB by the rules of ``to_rgb8`` (16-bit and float scaled, transparency on white); other modes via Pillow."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return Image.fromarray(to_rgb8(np.asarray(img)))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return Image.fromarray(to_rgb8(np.asarray(img.convert("RGBA"))))
    return img.convert("RGB")


def to_rgb8(pixels: np.ndarray, *, bgr: bool = False) -> np.ndarray:
    """Any photo or video frame as a contiguous ``(h, w, 3)`` RGB uint8 array; the one rule set for both.

    ``pixels`` is ``(h, w)`` or ``(h, w, 1)`` gray, ``(h, w, 2)`` gray + alpha, ``(h, w, 3)`` colour or
    ``(h, w, 4)`` colour + alpha; ``bgr`` says the colour channels are in OpenCV's order. Values become 8 bits:

    * uint8 as it is; uint16 (a 16-bit image) by its high byte (``v >> 8``);
    * other integers (Pillow's 32-bit ``I``): as they are if all lie in 0..255, by the high byte if in 0..65535;
    * floats (Pillow's ``F``): times 255 if all lie in 0..1, rounded if in 0..255 (NaN and infinities count as 0);
    * any other range is stretched linearly from the image's minimum (0) to its maximum (255).

    Alpha (scaled by the same rules) is composited onto white, as the data sets' own conversion did.
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"not an image array: shape {pixels.shape}")
    values = _to_uint8(pixels)
    channels = values.shape[2]
    colour = values[:, :, : 1 if channels <= 2 else 3]
    if channels in (2, 4):
        alpha = values[:, :, -1:].astype(np.uint32)
        blended = (colour.astype(np.uint32) * alpha + 255 * (255 - alpha) + 127) // 255
        colour = blended.astype(np.uint8)
    if bgr and colour.shape[2] == 3:
        colour = colour[:, :, ::-1]
    if colour.shape[2] == 1:
        return np.repeat(colour, 3, axis=2)
    return np.ascontiguousarray(colour)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """The value rules of ``to_rgb8``, over the whole array (alpha included)."""
    kind = pixels.dtype.kind
    if pixels.dtype == np.uint8:
        return pixels
    if kind == "b":
        return pixels.astype(np.uint8) * 255
    if kind == "u" and pixels.dtype.itemsize == 2:  # any byte order
        return (pixels.astype(np.uint16) >> 8).astype(np.uint8)
    if kind not in "uif":
        raise ValueError(f"not an image array: dtype {pixels.dtype}")
    data = np.nan_to_num(pixels.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if kind == "f" and lo >= 0 and hi <= 1:
        data = data * 255
    elif lo >= 0 and hi <= 255:
        pass
    elif kind != "f" and lo >= 0 and hi <= 65535:
        data = np.floor(data / 256)
    else:
        data = (data - lo) * (255 / (hi - lo) if hi > lo else 0.0)
    return np.clip(np.rint(data), 0, 255).astype(np.uint8)


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (h, w, 3) uint8 image resized to ``size`` = (width, height): box filter when shrinking (every source pixel
    counts, as OpenCV's INTER_AREA), bilinear when enlarging; Pillow's, as fast as OpenCV's area filter here."""
    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        return image
    shrink = size[0] * size[1] < width * height
    return np.asarray(Image.fromarray(image).resize(tuple(size), Image.BOX if shrink else Image.BILINEAR))
