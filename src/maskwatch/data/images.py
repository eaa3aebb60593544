"""Reading images safely: every failure becomes a short reason, never a crash."""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from maskwatch.progress import printable

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif"})
# photo formats this Pillow may lack a decoder for: opened when it has one (PIL.features), else each file is reported
OPTIONAL_IMAGE_FORMATS = {".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF"}

# The decoding budget: an image whose decoding would take more memory than this is refused before it is decoded.
# 768 MB takes an 8-bit RGB photo up to about 70 megapixels (a 1-bit or gray one up to about 95) and keeps a
# maskwatch process with its models under about 1 GB; raise it with --max-decode-mb or MASKWATCH_MAX_DECODE_MB.
DEFAULT_MAX_DECODE_MB = 768
BUDGET_ENV = "MASKWATCH_MAX_DECODE_MB"
BUDGET_HINT = "--max-decode-mb / MASKWATCH_MAX_DECODE_MB"
RGB_COPIES_BYTES = 4 + 3  # per pixel after decoding: Pillow's RGB image (4 bytes a pixel) and one numpy RGB copy
_budget_mb: float | None = None  # set_decode_budget's value; None: the environment's, else the default


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
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS or Path(path).suffix.lower() in OPTIONAL_IMAGE_FORMATS


def format_support(suffix: str) -> str | None:
    """None when this Pillow decodes files with ``suffix``; else the one-line reason it cannot (HEIC/AVIF)."""
    kind = OPTIONAL_IMAGE_FORMATS.get(suffix.lower())
    if kind is None:
        return None
    if kind == "AVIF":
        from PIL import features

        if features.check("avif"):
            return None
        return "unsupported format (AVIF): this Pillow has no AVIF decoder; convert it or upgrade Pillow (11.3+)"
    if "HEIF" in Image.registered_extensions().values() or ".heic" in Image.registered_extensions():
        return None  # pillow-heif's opener is registered
    return "unsupported format (HEIC): convert it or pip install pillow-heif"


# ------------------------------------------------------------------------------------------ the decoding budget


def set_decode_budget(megabytes: float | None) -> None:
    """The decoding budget for this process, in MB (None: ``$MASKWATCH_MAX_DECODE_MB``, else 768); the CLI's
    ``--max-decode-mb``."""
    global _budget_mb
    if megabytes is not None and not megabytes > 0:
        raise ValueError(f"the decoding budget must be positive (got {megabytes})")
    _budget_mb = megabytes


def decode_budget() -> int:
    """The decoding budget in bytes: ``set_decode_budget``'s, else ``$MASKWATCH_MAX_DECODE_MB``, else 768 MB."""
    mb = _budget_mb
    if mb is None:
        env = os.environ.get(BUDGET_ENV, "").strip()
        try:
            mb = float(env) if env else DEFAULT_MAX_DECODE_MB
        except ValueError:
            log.warning("%s=%r is not a number of megabytes: using %d", BUDGET_ENV, env, DEFAULT_MAX_DECODE_MB)
            mb = DEFAULT_MAX_DECODE_MB
        if not mb > 0:
            mb = DEFAULT_MAX_DECODE_MB
    return int(mb * 1_000_000)


def decode_bytes(width: int, height: int, mode: str = "RGB") -> int:
    """Memory that decoding a ``width`` x ``height`` image of Pillow ``mode`` to the pipeline's RGB takes: the
    decoded pixels as Pillow holds them (1 byte for 1-bit, gray and palette images, 2 for 16-bit, 4 for the rest),
    what converting them to 8-bit RGB needs on the way (16-bit, 32-bit and float images and transparency go through
    numpy), then Pillow's RGB image and a numpy copy (``RGB_COPIES_BYTES``). Detector inputs are bounded apart
    (``detect.detector``), so this is the whole cost of an image that grows with its size."""
    if mode in ("1", "L", "P"):
        stored = 1
    elif mode.startswith("I;16"):
        stored = 2 + 8  # the array, its uint16 copy, the high byte, the gray-to-RGB repeat
    elif mode in ("I", "F"):
        stored = 4 + 32  # float64 copies for the value rules of to_rgb8
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        stored = 4 + 20  # compositing on white in uint16
    else:
        stored = 4
    return int(width) * int(height) * (stored + RGB_COPIES_BYTES)


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:,.0f} MB" if n >= 10_000_000 else f"{n / 1_000_000:,.1f} MB"


def over_budget(width: int, height: int, mode: str = "RGB", what: str = "") -> str | None:
    """The one-line reason an image (or a video's frames: ``what`` = "frames of ") is refused before decoding, or
    None when it fits the decoding budget."""
    need, budget = decode_bytes(width, height, mode), decode_budget()
    if need <= budget:
        return None
    return (
        f"{what}{width:,} x {height:,} pixels ({megabytes(need)} decoded) is over the decoding budget of"
        f" {megabytes(budget)} ({BUDGET_HINT})"
    )


def open_rgb(path: str | Path) -> Image.Image:
    """Open an image fully decoded, EXIF-rotated, in RGB; raise ``BadImageError`` with a reason."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise BadImageError(path, f"cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):  # never opened: reading a FIFO blocks, a device may never end
        raise BadImageError(path, f"not a regular file: {file_type(st.st_mode)}")
    if st.st_size == 0:
        raise BadImageError(path, "zero-byte file")
    unsupported = format_support(path.suffix)
    if unsupported:
        raise BadImageError(path, unsupported)
    return _decode(path, path, max_pixels=LOCAL_MAX_PIXELS)


def file_type(mode: int) -> str:
    """What a non-regular file is, in words (for ``st_mode``)."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def decode_rgb(data: bytes, name: str = "upload", *, max_pixels: int | None = None) -> Image.Image:
    """``open_rgb`` for bytes in memory (an upload); images over ``max_pixels`` are refused before decoding."""
    if not data:
        raise BadImageError(name, "zero-byte file")
    return _decode(io.BytesIO(data), name, max_pixels=max_pixels)


_BOMB_SIZE = re.compile(r"Image size \((\d+) pixels\)")


def _decode(source: Path | io.BytesIO, name: str | Path, *, max_pixels: int | None = None) -> Image.Image:
    """Decode with every check before the pixels are: the caller's pixel limit, the decoding budget, Pillow's
    guard; Pillow's warnings (corrupt EXIF, a truncated TIFF read) are logged naming the file."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with the size
            with Image.open(source) as img:
                w, h = img.size
                if max_pixels is not None and w * h > max_pixels:
                    raise ImageTooLargeError(name, f"too many pixels ({w}x{h} = {w * h:,} pixels > {max_pixels:,})")
                refused = over_budget(w, h, "RGBA" if "transparency" in img.info else img.mode)
                if refused:
                    raise ImageTooLargeError(name, refused)
                # Pillow's own guard (its warning over MAX_IMAGE_PIXELS, here an error; its error over twice that)
                # stands where the caller sets no limit (ServeSettings keeps its max_pixels under Pillow's error).
                limit = Image.MAX_IMAGE_PIXELS
                if max_pixels is None and limit and w * h > limit:
                    raise ImageTooLargeError(name, f"too many pixels (over {limit:,}: {w:,} x {h:,} = {w * h:,})")
                img.load()
                ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
                return _to_rgb(img)
    except UnidentifiedImageError:
        raise BadImageError(name, "not an image") from None
    except Image.DecompressionBombError as exc:  # raised by Image.open: the size is only in its message
        found = _BOMB_SIZE.search(str(exc))
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        pixels = f"{int(found.group(1)):,} pixels" if found else "more pixels"
        raise ImageTooLargeError(name, f"too many pixels ({pixels}, over Pillow's limit of {limit:,})") from None
    except MemoryError:
        raise ImageTooLargeError(name, f"out of memory decoding it ({BUDGET_HINT} may be set too high)") from None
    except OSError as exc:
        text = str(exc)
        reason = "truncated image" if "truncated" in text.lower() else f"unreadable image ({text})"
        raise BadImageError(name, reason) from None
    except (ValueError, SyntaxError, IndexError, TypeError, struct.error, ZeroDivisionError) as exc:
        raise BadImageError(name, f"corrupt image ({exc})") from None  # Pillow raises these on corrupt headers
    finally:
        _log_warnings(name, caught)


def _log_warnings(name: str | Path, caught: list[warnings.WarningMessage]) -> None:
    """Pillow's warnings on one file, each once, as a log line that names the file (not a bare warning)."""
    seen: set[str] = set()
    for w in caught:
        text = (str(w.message).splitlines() or [""])[0]
        if text not in seen:
            seen.add(text)
            log.warning("warning %s: Pillow: %s", printable(str(name)), text.strip())


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
        alpha = values[:, :, -1:].astype(np.uint16)  # c*a + 255*(255-a) + 127 <= 65152: uint16 holds it
        blended = colour.astype(np.uint16) * alpha
        blended += 255 * (255 - alpha) + 127
        blended //= 255
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
