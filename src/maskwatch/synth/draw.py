"""Procedural face masks and mouth occluders drawn from a face box and its 5 landmarks (no image assets).

Landmarks follow the detector's order: eye on image-left, eye on image-right, nose tip, mouth corner image-left,
mouth corner image-right. Shapes are built in a face-aligned frame (origin at the eye midpoint, ``u`` along the
eye line, ``v`` down the face), so the eye-line angle (roll) rotates them, and the nose's offset from the eye
midpoint (yaw) shifts and narrows them toward the visible side. ``draw_mask`` and ``draw_occluder`` return the
new image and the alpha coverage (pixels where it is 0 are unchanged); everything random comes from ``rng``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = ("surgical", "cloth", "respirator")
PLACEMENTS = ("correct", "under_nose", "on_chin", "slipped_side")  # correct = nose bridge to chin covered
OCCLUDERS = ("hand", "scarf", "paper")  # hard negatives: not a mask over the mouth
PATTERNS = ("plain", "pleats", "stripes", "dots", "print")
PALETTE: dict[str, tuple[int, int, int]] = {
    "light_blue": (150, 190, 225),
    "white": (236, 236, 232),
    "black": (32, 32, 36),
    "navy": (32, 44, 86),
    "grey": (140, 142, 146),
    "pink": (232, 172, 190),
    "green": (86, 150, 108),
    "red": (180, 42, 48),
    "beige": (214, 196, 166),
    "dark_brown": (82, 56, 40),
    "teal": (40, 140, 150),
    "yellow": (230, 200, 70),
}

# How often each style, pattern, colour and wrong placement is drawn. "uniform": all alike (the widest spread).
# "realistic": close to what cameras see (mostly plain light-blue or white surgical masks, worn wrongly mostly
# under the nose), with every colour and pattern still present; incorrect and correct masks share one look,
# so that only the placement tells them apart.
MIXES: dict[str, dict[str, dict[str, float]]] = {
    "uniform": {},
    "realistic": {
        "style": {"surgical": 0.6, "cloth": 0.25, "respirator": 0.15},
        "pattern": {"plain": 0.55, "pleats": 0.3, "print": 0.07, "stripes": 0.04, "dots": 0.04},
        "color": {
            "light_blue": 0.34,
            "white": 0.2,
            "black": 0.15,
            "grey": 0.08,
            "navy": 0.06,
            "pink": 0.04,
            "beige": 0.04,
            "green": 0.018,
            "red": 0.018,
            "teal": 0.018,
            "yellow": 0.018,
            "dark_brown": 0.018,
        },
        "placement": {"under_nose": 0.65, "on_chin": 0.25, "slipped_side": 0.1},
    },
}

Point = tuple[float, float]


@dataclass(frozen=True)
class FaceFrame:
    """A face-aligned frame from the box and landmarks; lengths in image pixels."""

    origin: np.ndarray  # eye midpoint (image)
    rot: np.ndarray  # 2x2, local (u, v) -> image direction
    eye_dist: float
    nose: np.ndarray  # local (u, v)
    mouth_l: np.ndarray
    mouth_r: np.ndarray
    chin_v: float
    face_w: float
    yaw: float  # nose u offset / eye distance, about -0.5..0.5

    @property
    def mouth(self) -> np.ndarray:
        return (self.mouth_l + self.mouth_r) / 2

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        """Local (N, 2) -> image (N, 2)."""
        return self.origin + np.asarray(pts, np.float64) @ self.rot.T

    def to_local(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, np.float64) - self.origin) @ self.rot


def face_frame(box: Sequence[float] | np.ndarray, landmarks: np.ndarray) -> FaceFrame:
    """Fit the face-aligned frame: roll from the eye line, chin from the box and landmarks, yaw from the nose."""
    lms = np.asarray(landmarks, np.float64).reshape(5, 2)
    x1, y1, x2, y2 = (float(c) for c in box)
    e0, e1 = lms[0], lms[1]
    d = e1 - e0
    eye_dist = max(float(np.hypot(*d)), 1.0)
    theta = math.atan2(d[1], d[0])
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    origin = (e0 + e1) / 2
    local = (lms - origin) @ rot
    nose, ml, mr = local[2], local[3], local[4]
    mouth_v = (ml[1] + mr[1]) / 2
    nose_mouth = max(mouth_v - nose[1], 0.15 * eye_dist)
    # Chin: the ray down the face from the eye midpoint to the box edge, blended with a landmark estimate.
    down = rot[:, 1]
    hits = []
    for k, lo, hi in ((0, x1, x2), (1, y1, y2)):
        if abs(down[k]) > 1e-6:
            t = ((hi if down[k] > 0 else lo) - origin[k]) / down[k]
            if t > 0:
                hits.append(t)
    ray = min(hits) if hits else mouth_v + 1.2 * nose_mouth
    chin_v = 0.5 * ray + 0.5 * (mouth_v + 1.2 * nose_mouth)
    chin_v = max(chin_v, mouth_v + 0.5 * nose_mouth)
    box_w = min(x2 - x1, 0.85 * (y2 - y1))
    face_w = 0.5 * max(box_w, eye_dist) + 0.5 * 2.3 * eye_dist
    face_w = max(face_w, 1.6 * float(np.hypot(*(mr - ml))))
    yaw = float(np.clip(nose[0] / eye_dist, -0.6, 0.6))
    return FaceFrame(origin, rot, eye_dist, nose, ml, mr, float(chin_v), float(face_w), yaw)


def _catmull_rom(ctrl: np.ndarray, n: int = 12) -> np.ndarray:
    """A closed Catmull-Rom spline through ``ctrl`` (N, 2), ``n`` samples per segment."""
    out = []
    m = len(ctrl)
    ts = np.linspace(0, 1, n, endpoint=False)[:, None]
    for i in range(m):
        p0, p1, p2, p3 = ctrl[i - 1], ctrl[i], ctrl[(i + 1) % m], ctrl[(i + 2) % m]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * ts
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * ts**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * ts**3
            )
        )
    return np.concatenate(out)


# Outlines in mask coordinates: s in [-1, 1] across, t = 0 at the top edge, 1 at the bottom (chin).
_OUTLINES = {
    "surgical": [
        (-0.86, 0.0), (-0.45, -0.03), (0.0, -0.1), (0.45, -0.03), (0.86, 0.0), (1.0, 0.3), (0.95, 0.62),
        (0.72, 0.88), (0.0, 1.0), (-0.72, 0.88), (-0.95, 0.62), (-1.0, 0.3),
    ],
    "cloth": [
        (-0.8, 0.04), (-0.4, -0.05), (0.0, -0.14), (0.4, -0.05), (0.8, 0.04), (1.0, 0.32), (0.92, 0.66),
        (0.6, 0.92), (0.0, 1.04), (-0.6, 0.92), (-0.92, 0.66), (-1.0, 0.32),
    ],
}  # fmt: skip


def _outline(style: str) -> np.ndarray:
    if style == "respirator":  # a rounder cup: an ellipse, slightly pointed at the nose bridge
        a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        s = 0.95 * np.cos(a)
        t = 0.5 + 0.52 * np.sin(a)
        t = np.where(np.sin(a) < 0, t - 0.06 * np.cos(a) ** 8, t)
        return np.column_stack([s, t])
    return np.asarray(_OUTLINES[style], np.float64)


@dataclass(frozen=True)
class MaskGeom:
    """Maps mask coordinates (s, t) to image pixels for one drawn mask."""

    frame: FaceFrame
    cx: float
    top: float
    height: float
    half_l: float
    half_r: float
    angle: float  # extra rotation (slipped masks), radians, about the mask centre
    shift: float  # extra sideways shift (local u)

    def to_image(self, st: np.ndarray) -> np.ndarray:
        st = np.asarray(st, np.float64).reshape(-1, 2)
        s, t = st[:, 0], st[:, 1]
        u = self.cx + np.where(s < 0, s * self.half_l, s * self.half_r)
        v = self.top + t * self.height
        pc = np.array([self.cx, self.top + 0.5 * self.height])
        d = np.column_stack([u, v]) - pc
        c, sn = math.cos(self.angle), math.sin(self.angle)
        d = d @ np.array([[c, -sn], [sn, c]]).T
        return self.frame.to_image(pc + d + np.array([self.shift, 0.0]))

    @property
    def width(self) -> float:
        return self.half_l + self.half_r


def mask_geometry(frame: FaceFrame, placement: str, rng: np.random.Generator) -> MaskGeom:
    """Where the mask sits for ``placement``: top edge, bottom edge, width, yaw narrowing and slipping."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    nose_v, mouth_v, chin_v = frame.nose[1], frame.mouth[1], frame.chin_v
    fw = frame.face_w
    bottom = chin_v + 0.05 * (chin_v - nose_v)
    half = 0.5 * fw * rng.uniform(0.93, 1.0)
    angle = shift = 0.0
    if placement == "correct":
        top = rng.uniform(0.4, 0.5) * nose_v  # the nose bridge, between the eye line and the nose tip
    elif placement == "under_nose":
        top = nose_v + rng.uniform(0.3, 0.4) * (mouth_v - nose_v)
    elif placement == "on_chin":
        top = mouth_v + rng.uniform(0.35, 0.5) * (chin_v - mouth_v)  # below the lower lip
        bottom = chin_v + 0.3 * (chin_v - mouth_v)
        half *= 0.92
    else:  # slipped_side
        top = rng.uniform(0.6, 0.75) * nose_v
        side = 1.0 if rng.random() < 0.5 else -1.0
        shift = side * rng.uniform(0.33, 0.4) * fw
        angle = side * math.radians(rng.uniform(4, 10))
        half *= 0.92
    # Yaw: the mask follows the nose; the far side (where the nose points) foreshortens, the near side less so.
    k = float(np.clip(1.2 * frame.yaw, -0.6, 0.6))
    cx = 0.6 * frame.nose[0] + 0.4 * frame.mouth[0] if placement != "on_chin" else frame.mouth[0]
    half_l = half * (1 + 0.4 * k if k > 0 else 1 + k)
    half_r = half * (1 - k if k > 0 else 1 - 0.4 * k)
    return MaskGeom(frame, float(cx), float(top), float(bottom - top), half_l, half_r, angle, shift)


def _poly(pts: np.ndarray) -> list[Point]:
    return [(float(x), float(y)) for x, y in pts]


def _shade(image: Image.Image, alpha: np.ndarray, color: Sequence[int], blur: float) -> np.ndarray:
    """The colour modulated by the face's own luminance, blurred so only the lighting (not the features under the
    mask: lips, teeth) shows; H x W x 3 float."""
    lum = np.asarray(image.convert("L").filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255
    w = alpha > 0.5
    mean = float(lum[w].mean()) if w.any() else float(lum.mean())
    shade = np.clip(1.0 + 0.9 * (lum - mean), 0.5, 1.3)
    col = np.asarray(color, np.float32)
    return col[None, None, :] * shade[..., None] + 40.0 * (lum - mean)[..., None]


def _composite(image: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    out = image.astype(np.float32) * (1 - a) + np.clip(layer, 0, 255) * a
    out = np.rint(out).astype(np.uint8)
    return np.where(a > 0, out, image)


def _blurred(mask: Image.Image, radius: float) -> np.ndarray:
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), np.float32) / 255


def _scaled(color: Sequence[int], k: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * k, 0, 255)) for c in color)  # type: ignore[return-value]


def _contrast(color: Sequence[int], rng: np.random.Generator) -> tuple[int, int, int]:
    lum = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    names = [n for n, c in PALETTE.items() if abs(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] - lum) > 50]
    return PALETTE[names[int(rng.integers(len(names)))]] if names else _scaled(color, 0.5)


def _line(draw: ImageDraw.ImageDraw, geom: MaskGeom, st: np.ndarray, fill: Sequence[int], width: int) -> None:
    draw.line(_poly(geom.to_image(st)), fill=tuple(fill), width=width, joint="curve")


def _pattern(
    draw: ImageDraw.ImageDraw, geom: MaskGeom, pattern: str, color: Sequence[int], rng: np.random.Generator
) -> None:
    lw = max(1, round(0.014 * geom.width))
    s = np.linspace(-1.1, 1.1, 24)
    if pattern == "pleats":
        for t in (0.3, 0.5, 0.7):
            bow = 0.03 * (1 - s**2)
            _line(draw, geom, np.column_stack([s, t + bow]), _scaled(color, 0.72), lw)
            _line(draw, geom, np.column_stack([s, t + bow + 0.025]), _scaled(color, 1.12), lw)
    elif pattern == "stripes":
        fg = _contrast(color, rng)
        step = rng.uniform(0.1, 0.18)
        slope = rng.choice([0.0, 0.5, -0.5])
        for t0 in np.arange(-0.8, 1.8, step):
            _line(draw, geom, np.column_stack([s, t0 + slope * s]), fg, max(1, round(lw * rng.uniform(1, 2.5))))
    elif pattern == "dots":
        fg = _contrast(color, rng)
        r = rng.uniform(0.012, 0.025) * geom.width
        step = rng.uniform(0.14, 0.22)
        for i, t in enumerate(np.arange(-0.1, 1.1, step)):
            for sx in np.arange(-1.0 + (i % 2) * step / 2, 1.0, step):
                x, y = geom.to_image(np.array([[sx, t]]))[0]
                draw.ellipse([x - r, y - r, x + r, y + r], fill=fg)
    elif pattern == "print":
        cols = [_contrast(color, rng) for _ in range(3)]
        for _ in range(int(rng.integers(8, 16))):
            x, y = geom.to_image(np.array([[rng.uniform(-1, 1), rng.uniform(-0.1, 1.0)]]))[0]
            rx, ry = rng.uniform(0.03, 0.09, 2) * geom.width
            draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=cols[int(rng.integers(3))])
    elif pattern != "plain":
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")


def draw_mask(
    image: Image.Image,
    box: Sequence[float] | np.ndarray,
    landmarks: np.ndarray,
    *,
    style: str,
    placement: str,
    color: tuple[int, int, int],
    pattern: str,
    rng: np.random.Generator,
) -> tuple[Image.Image, np.ndarray]:
    """Draw a face mask; returns (new RGB image, alpha coverage H x W float32 in [0, 1])."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    image = image.convert("RGB")
    frame = face_frame(box, landmarks)
    geom = mask_geometry(frame, placement, rng)
    outline = _catmull_rom(_outline(style))
    sharp = Image.new("L", image.size, 0)
    ImageDraw.Draw(sharp).polygon(_poly(geom.to_image(outline)), fill=255)
    soft = max(0.8, 0.012 * frame.face_w)
    a_mask = _blurred(sharp, soft)

    layer = _shade(image, a_mask, color, 0.06 * frame.face_w)
    layer += rng.normal(0, 3.0, layer.shape[:2])[..., None]  # fabric grain
    layer_img = Image.fromarray(np.clip(layer, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(layer_img)
    _pattern(draw, geom, pattern, color, rng)
    lw = max(1, round(0.014 * geom.width))
    s = np.linspace(-1.0, 1.0, 24)
    if style == "surgical" and pattern != "pleats":
        for t in (0.32, 0.52, 0.72):
            _line(draw, geom, np.column_stack([s, t + 0.03 * (1 - s**2)]), _scaled(color, 0.82), lw)
    if style == "respirator":  # centre seam
        _line(draw, geom, np.array([[0.0, -0.04], [0.0, 0.5], [0.0, 1.02]]), _scaled(color, 0.7), lw)
        if rng.random() < 0.4:  # exhalation valve
            x, y = geom.to_image(np.array([[0.45, 0.6]]))[0]
            r = 0.09 * geom.width
            draw.ellipse([x - r, y - r, x + r, y + r], fill=_scaled(color, 0.8), outline=_scaled(color, 0.55))
    # Top seam and its shadow: darker along the top edge.
    top_edge = np.column_stack([s * 0.9, np.interp(s * 0.9, *_top_curve(style))])
    _line(draw, geom, top_edge + np.array([0.0, 0.03]), _scaled(color, 0.6), max(1, round(1.5 * lw)))
    _line(draw, geom, top_edge + np.array([0.0, 0.07]), _scaled(color, 0.82), lw)
    out = _composite(np.asarray(image), np.asarray(layer_img, np.float32), a_mask)
    loop_col = (238, 238, 236) if style != "cloth" else _scaled(color, 0.9)
    return _with_ear_loops(out, geom, a_mask, loop_col)


def _with_ear_loops(
    out: np.ndarray, geom: MaskGeom, a_mask: np.ndarray, color: Sequence[float]
) -> tuple[Image.Image, np.ndarray]:
    """Ear loops (thin lines from the mask's sides toward the ears) over a drawn mask; (image, total alpha)."""
    frame = geom.frame
    lw = max(1, round(0.014 * geom.width))
    loops = Image.new("L", (out.shape[1], out.shape[0]), 0)
    ld = ImageDraw.Draw(loops)
    ear_v = 0.5 * frame.nose[1]
    for sign, half in ((-1, geom.half_l), (1, geom.half_r)):
        a = geom.to_image(np.array([[sign * 0.97, 0.12], [sign * 0.95, 0.75]]))
        ear = frame.to_image(np.array([[geom.cx + geom.shift + sign * 1.08 * half, ear_v]]))[0]
        ld.line(_poly(np.array([a[0], ear])), fill=255, width=max(1, lw // 2 + 1))
        ld.line(_poly(np.array([a[1], ear])), fill=200, width=max(1, lw // 2))
    a_loop = _blurred(loops, 0.5) * (1 - a_mask)
    out = _composite(out, np.broadcast_to(np.asarray(color, np.float32), out.shape), a_loop)
    alpha = np.clip(np.maximum(a_mask, a_loop), 0, 1).astype(np.float32)
    return Image.fromarray(out), alpha


def _half_affine(geom: MaskGeom, sign: int) -> np.ndarray:
    """3 x 3 matrix taking mask coordinates (s, t, 1) to image pixels on one half of the mask (s * sign >= 0),
    where ``MaskGeom.to_image`` is affine."""
    p0, ps, pt = geom.to_image(np.array([[0.0, 0.0], [float(sign), 0.0], [0.0, 1.0]]))
    m = np.eye(3)
    m[:2, 0] = (ps - p0) * sign
    m[:2, 1] = pt - p0
    m[:2, 2] = p0
    return m


def _face_luminance(image: Image.Image, frame: FaceFrame) -> float:
    return float(np.mean(_cheek_color(image, frame) @ np.array([0.299, 0.587, 0.114])))


def draw_transplant(
    image: Image.Image,
    box: Sequence[float] | np.ndarray,
    landmarks: np.ndarray,
    *,
    donor: Image.Image,
    donor_box: Sequence[float] | np.ndarray,
    donor_landmarks: np.ndarray,
    placement: str,
    rng: np.random.Generator,
) -> tuple[Image.Image, np.ndarray]:
    """Move a real mask from a photo of someone wearing it (``donor``, its face box and landmarks) onto this face.

    The donor's mask is taken where a correctly worn mask sits on the donor's face (nose bridge to chin, a little
    narrower than the face, so that little of the cheeks comes along) and warped, half by half, onto where
    ``placement`` puts a mask on this face: a real mask's cloth, folds, lighting and blur, worn correctly or not.
    Its brightness follows this face's (half way); the outline is soft and ear loops are drawn.
    Returns (new RGB image, alpha coverage)."""
    image, donor = image.convert("RGB"), donor.convert("RGB")
    frame = face_frame(box, landmarks)
    geom = mask_geometry(frame, placement, rng)
    dframe = face_frame(donor_box, donor_landmarks)
    dgeom = mask_geometry(dframe, "correct", rng)
    dgeom = replace(dgeom, half_l=0.9 * dgeom.half_l, half_r=0.9 * dgeom.half_r, top=dgeom.top + 0.08 * dgeom.height)
    scale = dgeom.width / max(geom.width, 1.0)
    if scale > 1.5:  # shrinking: blur first, or the warp aliases the weave
        donor = donor.filter(ImageFilter.GaussianBlur(0.45 * scale))
    gain = float(np.clip((_face_luminance(image, frame) / max(_face_luminance(donor, dframe), 1.0)) ** 0.5, 0.75, 1.33))
    valid_src = Image.new("L", donor.size, 255)
    w, h = image.size
    layer = np.zeros((h, w, 3), np.float32)
    valid = np.zeros((h, w), np.float32)
    inv_right = np.linalg.inv(_half_affine(geom, 1))
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5, np.arange(h, dtype=np.float64) + 0.5)
    left = (inv_right[0, 0] * xs + inv_right[0, 1] * ys + inv_right[0, 2]) < 0
    for sign, here in ((-1, left), (1, ~left)):
        to_donor = _half_affine(dgeom, sign) @ np.linalg.inv(_half_affine(geom, sign))  # this image -> donor pixels
        coeffs = tuple(float(c) for c in to_donor[:2].reshape(-1))
        warped = np.asarray(donor.transform(image.size, Image.AFFINE, coeffs, Image.BILINEAR), np.float32)
        ok = np.asarray(valid_src.transform(image.size, Image.AFFINE, coeffs, Image.BILINEAR), np.float32) / 255
        layer[here] = warped[here]
        valid[here] = ok[here]
    layer *= gain
    outline = _catmull_rom(_outline(str(rng.choice(["surgical", "cloth"]))))
    sharp = Image.new("L", image.size, 0)
    ImageDraw.Draw(sharp).polygon(_poly(geom.to_image(outline)), fill=255)
    a_mask = _blurred(sharp, max(0.8, 0.012 * frame.face_w)) * valid
    out = _composite(np.asarray(image), layer, a_mask)
    inside = a_mask > 0.5
    loop_col = (238, 238, 236) if rng.random() < 0.6 or not inside.any() else layer[inside].mean(axis=0)
    return _with_ear_loops(out, geom, a_mask, loop_col)


def _top_curve(style: str) -> tuple[np.ndarray, np.ndarray]:
    """The top edge as t(s), for the seam line."""
    ctrl = _catmull_rom(_outline(style), 16)
    upper = ctrl[ctrl[:, 1] < 0.3]
    order = np.argsort(upper[:, 0])
    return upper[order, 0], upper[order, 1]


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 48) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    p = np.column_stack([rx * np.cos(a), ry * np.sin(a)])
    c, s = math.cos(angle), math.sin(angle)
    return p @ np.array([[c, -s], [s, c]]).T + [cx, cy]


def _rotate(pts: np.ndarray, center: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return (pts - center) @ np.array([[c, -s], [s, c]]).T + center


def _cheek_color(image: Image.Image, frame: FaceFrame) -> np.ndarray:
    """Median colour of small patches on both cheeks."""
    arr = np.asarray(image, np.float32)
    h, w = arr.shape[:2]
    r = max(2, round(0.06 * frame.face_w))
    samples = []
    for u in (-0.7 * frame.eye_dist, 0.7 * frame.eye_dist):
        x, y = frame.to_image(np.array([[u, 0.95 * frame.nose[1]]]))[0]
        xi, yi = int(np.clip(round(x), 0, w - 1)), int(np.clip(round(y), 0, h - 1))
        samples.append(arr[max(0, yi - r) : yi + r + 1, max(0, xi - r) : xi + r + 1].reshape(-1, 3))
    return np.median(np.concatenate(samples), axis=0)


def draw_occluder(
    image: Image.Image,
    box: Sequence[float] | np.ndarray,
    landmarks: np.ndarray,
    *,
    kind: str,
    rng: np.random.Generator,
) -> tuple[Image.Image, np.ndarray]:
    """Draw a hard negative over the mouth (hand, scarf, paper); returns (new RGB image, alpha coverage)."""
    image = image.convert("RGB")
    frame = face_frame(box, landmarks)
    fw = frame.face_w
    mouth = frame.mouth
    sharp = Image.new("L", image.size, 0)
    sd = ImageDraw.Draw(sharp)
    details: list[tuple[np.ndarray, tuple[int, int, int], int]] = []  # image polylines drawn on the layer
    if kind == "hand":
        color = _cheek_color(image, frame) * rng.uniform(0.92, 1.06, 3)
        pc = np.array([mouth[0] + rng.uniform(-0.08, 0.08) * fw, mouth[1] + 0.35 * (frame.chin_v - mouth[1])])
        ang = math.radians(rng.uniform(-30, 30))
        shapes = [_ellipse(pc[0], pc[1], 0.27 * fw, 0.23 * fw)]
        for i in range(4):
            fx = pc[0] + (i - 1.5) * 0.115 * fw
            length = 0.15 * fw * (1.0 - 0.12 * abs(i - 1.5))
            fy = pc[1] - 0.2 * fw - length
            shapes.append(_ellipse(fx, fy, 0.055 * fw, length + 0.04 * fw))
        thumb_side = 1 if rng.random() < 0.5 else -1
        thumb = (pc[0] + thumb_side * 0.3 * fw, pc[1] - 0.06 * fw)
        shapes.append(_ellipse(*thumb, 0.06 * fw, 0.15 * fw, thumb_side * 0.7))
        for pts in shapes:
            sd.polygon(_poly(frame.to_image(_rotate(pts, pc, ang))), fill=255)
        for i in range(3):  # gaps between fingers
            gx = pc[0] + (i - 1.0) * 0.115 * fw
            seg = _rotate(np.array([[gx, pc[1] - 0.2 * fw], [gx, pc[1] - 0.38 * fw]]), pc, ang)
            details.append((frame.to_image(seg), _scaled(color, 0.7), max(1, round(0.01 * fw))))
        radius = max(0.8, 0.01 * fw)
    elif kind == "scarf":
        color = np.asarray(list(PALETTE.values())[int(rng.integers(len(PALETTE)))], np.float32)
        top = frame.nose[1] + rng.uniform(0.2, 0.55) * (mouth[1] - frame.nose[1])
        u = np.linspace(-1.0 * fw, 1.0 * fw, 40) + mouth[0]
        wave = 0.03 * fw * np.sin(u / fw * rng.uniform(6, 10) + rng.uniform(0, 6.3))
        tilt = rng.uniform(-0.1, 0.1) * (u - mouth[0])
        upper = np.column_stack([u, top + wave + tilt])
        lower = np.array([[u[-1], frame.chin_v + 1.5 * fw], [u[0], frame.chin_v + 1.5 * fw]])
        sd.polygon(_poly(frame.to_image(np.vstack([upper, lower]))), fill=255)
        knit = _contrast(tuple(int(c) for c in color), rng) if rng.random() < 0.5 else _scaled(color, 0.8)
        step = rng.uniform(0.05, 0.09) * fw
        for k in range(1, 40):
            details.append((frame.to_image(upper + np.array([0.0, k * step])), knit, max(1, round(0.012 * fw))))
        radius = max(1.5, 0.03 * fw)
    elif kind == "paper":
        color = np.array([242, 240, 232], np.float32) * rng.uniform(0.94, 1.0, 3)
        pc = np.array([mouth[0] + rng.uniform(-0.05, 0.05) * fw, mouth[1] + rng.uniform(-0.02, 0.08) * fw])
        hw, hh = rng.uniform(0.36, 0.42) * fw, rng.uniform(0.24, 0.28) * fw
        ang = math.radians(rng.uniform(-12, 12))
        rect = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]]) + pc
        sd.polygon(_poly(frame.to_image(_rotate(rect, pc, ang))), fill=255)
        for k in range(int(rng.integers(3, 6))):  # lines of text
            y = pc[1] - 0.6 * hh + k * 0.3 * hh
            seg = np.array([[pc[0] - 0.75 * hw, y], [pc[0] + rng.uniform(0.2, 0.75) * hw, y]])
            details.append((frame.to_image(_rotate(seg, pc, ang)), (90, 90, 96), max(1, round(0.015 * fw))))
        radius = max(0.6, 0.006 * fw)
    else:
        raise ValueError(f"kind must be one of {OCCLUDERS}, got {kind!r}")
    alpha = _blurred(sharp, radius)
    layer = _shade(image, alpha, tuple(float(c) for c in color), 0.06 * fw)  # type: ignore[arg-type]
    if kind == "paper":
        layer = 0.6 * layer + 0.4 * color  # paper is flatter than skin or cloth
    layer += rng.normal(0, 2.0, layer.shape[:2])[..., None]
    layer_img = Image.fromarray(np.clip(layer, 0, 255).astype(np.uint8))
    ld = ImageDraw.Draw(layer_img)
    for pts, col, width in details:
        ld.line(_poly(pts), fill=tuple(int(c) for c in col), width=width)
    out = _composite(np.asarray(image), np.asarray(layer_img, np.float32), alpha)
    return Image.fromarray(out), alpha.astype(np.float32)


CELL = 160
LABEL_H = 18


def sample_grid(
    face_image: Image.Image, box: Sequence[float] | np.ndarray, landmarks: np.ndarray, seed: int = 0
) -> Image.Image:
    """Every style x placement (one row per style) plus the bare face and the occluders, labelled, in one grid."""
    rng = np.random.default_rng(seed)
    x1, y1, x2, y2 = (float(c) for c in box)
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, 1.4 * max(x2 - x1, y2 - y1)
    crop = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    names = list(PALETTE)
    cells: list[tuple[Image.Image, str]] = []
    for style in STYLES:
        for placement in PLACEMENTS:
            color = PALETTE[names[int(rng.integers(len(names)))]]
            pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
            img, _ = draw_mask(
                face_image, box, landmarks, style=style, placement=placement, color=color, pattern=pattern, rng=rng
            )
            cells.append((img, f"{style}/{placement}/{pattern}"))
    cells.append((face_image.convert("RGB"), "no mask"))
    for kind in OCCLUDERS:
        cells.append((draw_occluder(face_image, box, landmarks, kind=kind, rng=rng)[0], f"occluder/{kind}"))
    cols = len(PLACEMENTS)
    rows = math.ceil(len(cells) / cols)
    grid = Image.new("RGB", (cols * CELL, rows * (CELL + LABEL_H)), (255, 255, 255))
    gd = ImageDraw.Draw(grid)
    for i, (img, label) in enumerate(cells):
        r, c = divmod(i, cols)
        x, y = c * CELL, r * (CELL + LABEL_H)
        grid.paste(img.crop(crop).resize((CELL, CELL), Image.LANCZOS), (x, y + LABEL_H))
        gd.text((x + 3, y + 3), label, fill=(0, 0, 0))
    return grid
