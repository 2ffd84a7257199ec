"""The live WebSocket: the page sends camera frames (JPEG bytes), the service answers each with
its faces. The client sends the next frame only after the answer, so a slow server lowers the
frame rate instead of building a backlog. Faces are tracked across the connection's frames
(the Predictor's IoU tracker), so labels are smoothed and each face keeps its number.

Protocol: first message (text) ``{"token": "..."}`` (``null`` when the service has none); then
binary frames; each answer is ``{"faces": [...], "width", "height", "ms"}`` or ``{"error": ...}``
(a frame the service cannot read, or a full queue: the connection stays). A text message after
the first breaks the protocol: it is answered with an error and the socket closes with 1003
(unsupported data). Every answer and refusal is counted in ``/metrics`` (method ``WS``).
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from ..inference.tracking import IoUTracker
from .errors import ApiError, Busy
from .guard import token_ok
from .review import review_budget
from .service import Service, face_json

TEXT_FRAME = "frames are binary messages (JPEG or PNG bytes); text is only for the first message {'token': ...}"


def add_live_route(app: FastAPI, service: Service) -> None:
    @app.websocket("/v1/live")
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        try:
            hello = json.loads(await ws.receive_text())
            token = hello.get("token") if isinstance(hello, dict) else None
        except (ValueError, KeyError):
            token = None
        if not token_ok(service.settings.token, token):
            await ws.send_json({"error": "missing or wrong API token"})
            await ws.close(code=1008)
            return
        await ws.send_json(
            {"ready": True, "labels": list(service.labels), "min_confidence": service.predictor.min_confidence}
        )
        # each connection is its own source: its tracks are numbered from 1 like every other's
        tracker, source = service.predictor.tracker(), f"live-{uuid.uuid4().hex[:8]}"
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is None:
                    service.metrics.observe("WS", "/v1/live", 400, 0.0)
                    service.metrics.refuse("ws_text_frame")
                    await ws.send_json({"error": TEXT_FRAME})
                    await ws.close(code=1003, reason="frames are binary")
                    return
                await ws.send_json(await _answer(service, message["bytes"], tracker, source))
        except WebSocketDisconnect:
            return


async def _answer(service: Service, data: bytes, tracker: IoUTracker, source: str) -> dict:
    start = time.perf_counter()
    if len(data) > service.settings.max_upload_bytes:
        service.metrics.observe("WS", "/v1/live", 413, time.perf_counter() - start)
        return {"error": "frame exceeds the upload limit"}
    try:
        with review_budget(service.settings.review_per_request):
            rgb, faces = await service.predict_bytes(data, source, tracker)
    except ApiError as exc:  # one bad frame is answered, the connection stays
        service.metrics.observe("WS", "/v1/live", exc.status, time.perf_counter() - start)
        return {"error": str(exc)} | ({"retry_after": exc.retry_after} if isinstance(exc, Busy) else {})
    service.metrics.observe("WS", "/v1/live", 200, time.perf_counter() - start)
    return {
        "faces": [face_json(f) for f in faces],
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "ms": round((time.perf_counter() - start) * 1000, 2),
    }
