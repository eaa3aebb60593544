"""Reading images safely: every failure becomes a short reason, never a crash."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

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
    return _decode(path, path)


def decode_rgb(data: bytes, name: str = "upload", *, max_pixels: int | None = None) -> Image.Image:
    """``open_rgb`` for bytes in memory (an upload); images over ``max_pixels`` are refused before decoding."""
    if not data:
        raise BadImageError(name, "zero-byte file")
    return _decode(io.BytesIO(data), name, max_pixels=max_pixels)


def _decode(source: Path | io.BytesIO, name: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageTooLargeError(name, f"too many pixels ({w}x{h} > {max_pixels:,})")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except UnidentifiedImageError:
        raise BadImageError(name, "not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(name, "too many pixels (decompression bomb?)") from None
    except OSError as exc:
        text = str(exc)
        reason = "truncated image" if "truncated" in text.lower() else f"unreadable image ({text})"
        raise BadImageError(name, reason) from None
    except (ValueError, SyntaxError, IndexError, TypeError, struct.error, ZeroDivisionError) as exc:
        raise BadImageError(name, f"corrupt image ({exc})") from None  # Pillow raises these on corrupt headers


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency composited onto white (as the data sets' own conversion did)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
