"""Routes for video / camera jobs and for the review queue."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool

from .errors import Forbidden, NotFound, Unprocessable
from .service import Service

MIN_WINDOW_S, MAX_WINDOW_S = 0.1, 3600.0  # a timeline's window: finer is noise, coarser is one bar


class JobRequest(BaseModel):
    """``source``: a file name inside the media folder, an rtsp/http(s) URL, or a device index."""

    source: str | int
    stride: int = Field(1, ge=1, le=1000)
    max_frames: int | None = Field(None, ge=1)


class ReviewLabel(BaseModel):
    label: str


def add_job_routes(app: FastAPI, service: Service) -> None:
    jobs = service.jobs

    @app.post("/v1/jobs", status_code=201, summary="Start a job on a media file, stream URL or device")
    async def start(req: JobRequest) -> dict[str, Any]:
        loop = asyncio.get_running_loop()  # opening a stream can take its timeout: not on the event loop
        job = await loop.run_in_executor(None, jobs.start, req.source, req.stride, req.max_frames)
        return job.to_dict()

    @app.post("/v1/jobs/upload", status_code=201, summary="Start a job on an uploaded clip (raw body)")
    async def upload(request: Request, stride: int = 1, name: str = "upload") -> dict[str, Any]:
        data = await request.body()
        loop = asyncio.get_running_loop()
        job = await loop.run_in_executor(None, jobs.upload, data, name, max(1, stride))
        return job.to_dict()

    @app.get("/v1/jobs", summary="Every job, newest first")
    async def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in sorted(jobs.jobs.values(), key=lambda j: -j.started)]}

    @app.get("/v1/jobs/{job_id}", summary="A job's state and progress, with any stream gaps")
    async def status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).to_dict()

    @app.post("/v1/jobs/{job_id}/stop", summary="Stop a job (its results stay)")
    async def stop(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        job.stop()
        await asyncio.get_running_loop().run_in_executor(None, job.wait, 10)
        return job.to_dict()

    @app.get("/v1/jobs/{job_id}/results", summary="Face rows so far, as JSONL or CSV")
    async def results(job_id: str, format: str = "jsonl") -> StreamingResponse:
        job = jobs.get(job_id)
        if format not in ("jsonl", "csv"):
            raise NotFound(f"unknown format {format!r}; jsonl or csv")
        # streamed from the job's file: the rows written so far, never all of them in memory
        chunks = job.files.jsonl_chunks() if format == "jsonl" else job.files.csv_chunks(service.labels)
        media = "application/x-ndjson" if format == "jsonl" else "text/csv"
        return StreamingResponse(
            iterate_in_threadpool(chunks),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="job-{job.id}.{format}"'},
        )

    @app.get("/v1/jobs/{job_id}/timeline", summary="Emotion shares per time window")
    async def timeline(job_id: str, window: float = 5.0) -> dict[str, Any]:
        if not MIN_WINDOW_S <= window <= MAX_WINDOW_S:  # also false for nan; inf is above the top
            raise Unprocessable(f"window must be a number of seconds in {MIN_WINDOW_S:g}..{MAX_WINDOW_S:g}")
        job = jobs.get(job_id)
        windows = await asyncio.get_running_loop().run_in_executor(None, job.timeline, window)  # reads its file
        return {"window": window, "windows": windows, "gaps": job.to_dict()["gaps"]}


def _store(service: Service) -> Any:
    if service.review is None:
        raise Forbidden("review is off: start the service with --review DIR")
    return service.review


def _explain_png(service: Service, jpeg: bytes) -> bytes:
    """The crop under its Grad-CAM map for the class the served model predicts."""
    import cv2

    from ..inference.explain import explain, overlay
    from .imaging import decode_image

    crop = decode_image(jpeg, service.settings.max_pixels)
    ok, png = cv2.imencode(".png", overlay(crop, explain(service.predictor, crop))[..., ::-1])
    return png.tobytes()


def add_review_routes(app: FastAPI, service: Service) -> None:
    @app.get("/v1/review", summary="Uncertain faces waiting for a label, oldest first")
    async def queue(limit: int = 50) -> dict[str, Any]:
        store = _store(service)
        return {
            "items": store.pending(min(max(limit, 1), 500)),
            "counts": store.counts(),
            "labels": list(service.labels),
            "min_confidence": service.predictor.min_confidence,
        }

    @app.get("/v1/review/{item_id}/image", summary="The crop of a pending face (JPEG)")
    async def image(item_id: str) -> Response:
        return Response(_store(service).image(item_id), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/v1/review/{item_id}", summary="Label a face: a class name, no_face or skip")
    async def label(item_id: str, body: ReviewLabel) -> dict[str, Any]:
        return _store(service).label(item_id, body.label)

    @app.post("/v1/review/{item_id}/undo", summary="Put a face's last label back: pending again, first in the queue")
    async def undo(item_id: str) -> dict[str, Any]:
        return _store(service).undo(item_id)

    @app.get("/v1/review/{item_id}/explain", summary="Grad-CAM heat map over a pending face (PNG)")
    async def explain(item_id: str) -> Response:
        store = _store(service)
        data = store.image(item_id)
        png = await asyncio.get_running_loop().run_in_executor(None, _explain_png, service, data)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/v1/review-compare", summary="Before / after: accuracy on the held-out reviewed faces")
    async def compare() -> dict[str, Any]:
        from .compare import compare as run_compare

        store = _store(service)
        await asyncio.get_running_loop().run_in_executor(None, store.materialize_folder)  # labelled/, as named below
        model = service.settings.model
        shown = model if model.isidentifier() else "SERVED_MODEL"  # a shipped name as is; a path stays on the server
        return await asyncio.get_running_loop().run_in_executor(None, run_compare, service) | {
            # the fine-tune that keeps the served framing and reports intervals (or POST /v1/finetune)
            "train_command": f"resemotenet finetune {shown} --data folder:labelled -o runs/NAME",
            "run_in": "the review folder (--review DIR)"
            + ("; SERVED_MODEL: the weights given to --model" if shown != model else ""),
        }

    @app.get("/v1/review-export", summary="The labelled faces as a zip laid out as a folder: dataset")
    async def export() -> Response:
        data = await asyncio.get_running_loop().run_in_executor(None, _store(service).export_zip)
        return Response(
            data, media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="reviewed.zip"'}
        )
