"""The FastAPI application: still images, face crops, models, health, metrics and the page.

Every refusal is one line of JSON, ``{"error": "..."}``, with the status its ``ApiError`` names
(a full queue's 503 adds ``Retry-After``); an unexpected failure is a 500 with the same shape, and
the service keeps serving either way. Every answer, refusals by the front door included, is
counted in ``/metrics`` by route and status.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import mimetypes
import time
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..utils.errors import ConfigError, DataError
from .errors import ApiError, BadRequest, Busy, NotFound, TooLarge, UnsupportedMedia
from .guard import Guard
from .review import review_budget
from .service import Service, face_json
from .settings import ServeSettings

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def static_dir() -> str:
    return str(resources.files("resemotenet") / "serve" / "static")


def create_app(settings: ServeSettings, predictor: Any = None) -> FastAPI:
    """Build the service (loads the model once) and its routes."""
    service = Service(settings, predictor)
    app = FastAPI(
        title="resemotenet", version="1", summary="Facial emotion recognition service", lifespan=_lifespan(service)
    )
    app.state.service = service
    _errors(app)
    _core_routes(app, service)
    from .api_jobs import add_job_routes, add_review_routes
    from .live import add_live_route

    add_job_routes(app, service)
    add_review_routes(app, service)
    from .api_site import add_site_routes

    add_site_routes(app, service)
    add_live_route(app, service)
    _on_device_routes(app, service)
    # ONNX Runtime Web's files: module scripts must be served as JavaScript, wasm as wasm
    mimetypes.add_type("text/javascript", ".mjs")
    mimetypes.add_type("application/wasm", ".wasm")
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    app.add_middleware(Guard, settings=settings, metrics=service.metrics)
    app.add_middleware(Timed, metrics=service.metrics)  # outermost: it counts the front door's refusals too
    return app


def _lifespan(service: Service) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        service.close()

    return lifespan


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())[:500]}, status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
        return _error(exc.status, str(exc), headers)

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, exc.detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(exc).__name__})")


class Timed:
    """Counts and times every HTTP answer by route template and status (plain ASGI: an error
    raised while the body is read, such as a chunked upload over the limit, reaches the
    exception handlers as itself rather than wrapped in a task group)."""

    def __init__(self, app: Any, metrics: Any):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500

        async def sent(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            method = method if method in METHODS else "OTHER"  # a client cannot grow the label set
            self.metrics.observe(method, route, status, time.perf_counter() - start)


async def request_files(request: Request, max_files: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded file: a raw body is one file; multipart/form-data may hold many.

    Multipart is parsed in memory with the standard library (Starlette's parser spools large
    parts to temporary files, and nothing may reach the disk)."""
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/"):
        return [("upload", body)]
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not msg.is_multipart():
        raise BadRequest("malformed multipart body")
    files = [
        (part.get_filename() or f"part{i}", part.get_payload(decode=True) or b"")
        for i, part in enumerate(msg.iter_parts())
        if part.get_filename() is not None
    ]
    if not files:
        raise BadRequest("the multipart body holds no file")
    if len(files) > max_files:
        raise TooLarge(f"{len(files)} files in one request; at most {max_files}")
    return files


def check_model(service: Service, model: str | None) -> None:
    if model is not None and model not in (service.model_name, service.settings.model):
        raise NotFound(f"unknown model {model!r}; this service serves {service.model_name!r}")


def _core_routes(app: FastAPI, service: Service) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(f"{static_dir()}/index.html", headers={"Cache-Control": "no-store"})

    @app.get("/healthz", summary="Liveness and the model served")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": service.model_name,
            "uptime_s": round(time.time() - service.started, 1),
            "queue_depth": service.batcher.depth,
            "review": service.review is not None,
        }

    @app.get("/metrics", summary="Prometheus text format", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", summary="The model this service loaded")
    async def models() -> dict[str, Any]:
        return {"models": [service.model_info()], "default": service.model_name}

    @app.post("/v1/predict", summary="Every face of an image: box, label, probabilities, uncertain")
    async def predict(request: Request, model: str | None = None) -> dict[str, Any]:
        """Body: the image bytes (any content type; the content is sniffed) or multipart with one file."""
        check_model(service, model)
        files = await request_files(request, 1)
        start = time.perf_counter()
        with review_budget(service.settings.review_per_request):
            rgb, faces = await service.predict_bytes(files[0][1], files[0][0])
        return {
            "model": service.model_name,
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "min_confidence": service.predictor.min_confidence,
            "faces": [face_json(f) for f in faces],
            "ms": round((time.perf_counter() - start) * 1000, 2),
        }

    @app.post("/v1/classify", summary="Emotion of face crops a caller's own detector found (one or many)")
    async def classify(request: Request, model: str | None = None) -> dict[str, Any]:
        """Body: one crop's bytes, or multipart/form-data with one file part per crop (in order)."""
        check_model(service, model)
        files = await request_files(request, service.settings.max_crops)
        for name, data in files:
            if not data:
                raise BadRequest(f"{name}: empty file")
        try:
            with review_budget(service.settings.review_per_request):  # one request cannot fill the queue
                faces = await service.classify_bytes([d for _, d in files])
        except UnsupportedMedia as exc:
            raise UnsupportedMedia(f"{exc} (one of the {len(files)} crops)") from exc
        out = []
        for (name, _), f in zip(files, faces, strict=True):
            d = face_json(f)
            out.append({k: d[k] for k in ("label", "score", "probabilities", "top2", "uncertain")} | {"name": name})
        return {"model": service.model_name, "min_confidence": service.predictor.min_confidence, "faces": out}


def _on_device_routes(app: FastAPI, service: Service) -> None:
    """The page's on-device mode (``serve.ondevice``): frames stay in the browser."""
    from .ondevice import detector_path

    @app.get("/v1/on-device", summary="What a browser needs to run the detector and the model itself")
    async def on_device() -> dict[str, Any]:
        return service.on_device.info()

    @app.get("/v1/on-device/model.onnx", summary="The served model as ONNX (converted once, on first use)")
    async def on_device_model() -> Response:
        data = await asyncio.get_running_loop().run_in_executor(None, service.on_device.model_bytes)
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/on-device/detector.onnx", summary="The CenterFace face detector (ONNX)")
    async def on_device_detector() -> FileResponse:
        return FileResponse(detector_path(), media_type="application/octet-stream")
