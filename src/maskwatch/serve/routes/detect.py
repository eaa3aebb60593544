"""``POST /api/v1/detect``: the faces in one image, each labelled; the JSON of ``FrameResult.to_json()`` (the
schema of ``maskwatch detect --jsonl``) or the annotated JPEG."""

from __future__ import annotations

import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from PIL import Image

from maskwatch.detect.pipeline import FrameResult, Pipeline
from maskwatch.serve.deps import PipelineDep, StateDep, decode, infer, log_event, read_images
from maskwatch.serve.schemas import API, ERRORS, IMAGE_BODY, DetectOut
from maskwatch.serve.store import Event

router = APIRouter(prefix=API)


@router.post(
    "/detect",
    response_model=DetectOut,
    response_model_exclude_unset=True,  # no "landmarks": null when they were not asked for, as in to_json()
    responses={**ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "faces (or the annotated JPEG)"}},
    openapi_extra=IMAGE_BODY,
    summary="Find the faces in one image and label each",
)
async def detect(
    request: Request,
    response: Response,
    state: StateDep,
    pipeline: PipelineDep,
    annotate: Annotated[bool, Query(description="return the annotated JPEG instead of JSON")] = False,
    source: Annotated[str, Query(max_length=100, description="camera or source name for the log")] = "upload",
    landmarks: Annotated[bool, Query(description="add the 5 facial landmarks of each face")] = False,
) -> Any:
    ((name, data),) = await read_images(state, request)

    def work() -> tuple[FrameResult, bytes | None, int]:
        image = np.asarray(decode(state, name, data))
        result = pipeline.process(image, source=name)
        jpeg = _annotated_jpeg(pipeline, image, result) if annotate else None
        counts = result.counts(pipeline.labels)
        event = Event(source.strip() or "upload", "detect", counts, result.width, result.height)
        return result, jpeg, log_event(state, event, [(name, data)])

    result, jpeg, event_id = await infer(state, work)
    headers = {"X-Faces": str(len(result.faces)), "X-Event-Id": str(event_id)}
    if jpeg is not None:
        return Response(jpeg, media_type="image/jpeg", headers=headers)
    response.headers.update(headers)
    return result.to_json(landmarks=landmarks)  # checked against DetectOut by FastAPI on the way out


def _annotated_jpeg(pipeline: Pipeline, image: np.ndarray, result: FrameResult) -> bytes:
    from maskwatch.detect.annotate import Annotator

    buf = io.BytesIO()
    Image.fromarray(Annotator(pipeline.labels).draw(image, result)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
