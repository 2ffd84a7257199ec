"""Routes of the site loop: fine-tune on the reviewed faces, the before/after, promote, rollback."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from .errors import Forbidden
from .service import Service


class FinetuneRequest(BaseModel):
    epochs: int | None = Field(default=None, ge=1, le=200)
    layers: Literal["head", "partial", "full"] | None = None


class PromoteRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)


def _site(service: Service) -> Any:
    if service.site is None:
        raise Forbidden("the site loop needs review: start the service with --review DIR")
    return service.site


def add_site_routes(app: FastAPI, service: Service) -> None:
    @app.post("/v1/finetune", status_code=201, summary="Fine-tune the served model on the labelled faces")
    async def start(req: FinetuneRequest) -> dict[str, Any]:
        loop = asyncio.get_running_loop()  # writing the snapshot of the labelled faces touches the disk
        return await loop.run_in_executor(None, _site(service).start, req.epochs, req.layers)

    @app.get("/v1/finetune", summary="Fine-tunes: running ones, finished runs with their before/after")
    async def listing() -> dict[str, Any]:
        site = _site(service)
        reports = await asyncio.get_running_loop().run_in_executor(None, site.reports)
        return {
            "served": service.model_name,
            "can_roll_back": bool(site.previous),
            "jobs": [j.to_dict() for j in site.jobs.values()],
            "runs": reports,
        }

    @app.get("/v1/finetune/{name}", summary="One fine-tune's progress")
    async def status(name: str) -> dict[str, Any]:
        return _site(service).job(name).to_dict()

    @app.post("/v1/models/promote", summary="Serve a fine-tuned model from the next request on (no restart)")
    async def promote(req: PromoteRequest) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, _site(service).promote, req.name)

    @app.post("/v1/models/rollback", summary="Serve the model served before the last promote")
    async def rollback() -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, _site(service).rollback)
