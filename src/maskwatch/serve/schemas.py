"""What the API promises in its OpenAPI schema: the URL prefix, the response models, the error answers and the
upload body (multipart field ``file`` or the raw image)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

API = "/api/v1"
MULTIPART = "multipart/form-data"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
IMAGE_BODY = {  # the routes read the body themselves (within the limits): this tells the docs what they accept
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}


class ErrorOut(BaseModel):
    detail: str


class FaceOut(BaseModel):
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the uploaded image")
    det_score: float
    label: str
    score: float
    probs: dict[str, float]
    track_id: int | None = None
    landmarks: list[list[float]] | None = Field(
        None, description="with ?landmarks=true: 5 points [x, y] (eyes, nose, mouth corners) in the same pixels"
    )


class DetectOut(BaseModel):  # FrameResult.to_json(), field for field (no docstring: it would enter the schema)
    source: str
    frame: int | None = None
    width: int
    height: int
    faces: list[FaceOut]


class ClassifyItem(BaseModel):
    source: str
    label: str
    score: float
    probs: dict[str, float]
    reframed: bool | None = Field(
        None, description="with ?reframe=true: whether the crop was cut again around the face found in it"
    )
    face_box: list[float] | None = Field(
        None, description="[x1, y1, x2, y2] of the face it was cut around, in pixels of the uploaded image"
    )


class ClassifyOut(BaseModel):
    results: list[ClassifyItem]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "empty body or malformed upload",
        401: "API key missing or wrong",
        403: "cross-origin request from an origin not allowed with --cors",
        408: "upload too slow",
        413: "upload or image too large",
        415: "not an image",
        422: "broken image or bad parameter",
        503: "server busy: retry later",
    }.items()
}

READ_ERRORS: dict[int | str, dict[str, Any]] = {  # what the GET routes can answer
    401: ERRORS[401],
    422: {"model": ErrorOut, "description": "bad parameter"},
}
