"""``POST /api/v1/classify``: labels for face crops already cut (several per request), each cut again around its
face first unless ``?reframe=false``."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from PIL import Image

from maskwatch.runtime.classifiers import classify_images
from maskwatch.serve.deps import PipelineDep, StateDep, decode, infer, log_event, read_images
from maskwatch.serve.schemas import API, ERRORS, IMAGE_BODY, ClassifyOut
from maskwatch.serve.store import Event

CROP_SIDE = 512  # decoded crops are shrunk to this at once (the model sees 128-224 px)
router = APIRouter(prefix=API)


@router.post(
    "/classify",
    response_model=ClassifyOut,
    responses=ERRORS,
    openapi_extra=IMAGE_BODY,
    summary="Label face crops (one or more multipart 'file' fields, or one raw image)",
)
async def classify(
    request: Request,
    state: StateDep,
    pipeline: PipelineDep,
    source: Annotated[str, Query(max_length=100)] = "upload",
    reframe: Annotated[bool, Query(description="cut loosely framed crops again around their face")] = True,
) -> dict[str, list[dict]]:
    files = await read_images(state, request, many=True)
    max_pixels = state.settings.max_pixels

    def work() -> list[dict]:
        total = sum(_pixels(data) for _, data in files)
        if total > max_pixels:  # the limit holds for the whole request, not each crop
            raise HTTPException(413, f"{len(files)} images with {total:,} pixels in all > {max_pixels:,}")
        crops, scales = [], []
        for name, data in files:
            crop = decode(state, name, data)
            width, height = crop.size
            crop.thumbnail((CROP_SIDE, CROP_SIDE))
            crops.append(crop)
            scales.append((width / crop.width, height / crop.height))
        names = [name for name, _ in files]
        results = classify_images(pipeline.classifier, crops, names, state.reframer if reframe else None)
        counts = dict.fromkeys(pipeline.labels, 0)
        for result, (sx, sy) in zip(results, scales, strict=True):
            counts[result["label"]] += 1
            if result.get("face_box"):  # found in the thumbnail: back to the upload's pixels
                x1, y1, x2, y2 = result["face_box"]
                result["face_box"] = [round(v, 1) for v in (x1 * sx, y1 * sy, x2 * sx, y2 * sy)]
        log_event(state, Event(source.strip() or "upload", "classify", counts), files)
        return results

    return {"results": await infer(state, work)}


def _pixels(data: bytes) -> int:
    """Width x height from the image header (0 when unreadable: decoding reports it)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size[0] * img.size[1]
    except Exception:
        return 0
