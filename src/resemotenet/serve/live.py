"""The live WebSocket: the page sends camera frames (JPEG bytes), the service answers each with
its faces. The client sends the next frame only after the answer, so a slow server lowers the
frame rate instead of building a backlog. Faces are tracked across the connection's frames
(the Predictor's IoU tracker), so labels are smoothed and each face keeps its number.

Protocol: first message (text) ``{"token": "..."}`` (``null`` when the service has none); then
binary frames; each answer is ``{"faces": [...], "width", "height", "ms"}`` or ``{"error": ...}``.
"""

from __future__ import annotations

import json
import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from ..inference.predictor import IoUTracker
from .errors import ApiError
from .guard import token_ok
from .service import Service, face_json


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
        tracker, seen = IoUTracker(smoothing=service.predictor.smoothing), set()
        try:
            while True:
                data = await ws.receive_bytes()
                await ws.send_json(await _answer(service, data, tracker, seen))
        except WebSocketDisconnect:
            return


async def _answer(service: Service, data: bytes, tracker: IoUTracker, seen: set[int]) -> dict:
    start = time.perf_counter()
    if len(data) > service.settings.max_upload_bytes:
        return {"error": "frame exceeds the upload limit"}
    try:
        rgb, faces = await service.predict_bytes(data, "live", tracker, seen)
    except ApiError as exc:  # one bad frame is answered, the connection stays
        return {"error": str(exc)}
    service.metrics.observe("WS", "/v1/live", 200, time.perf_counter() - start)
    return {
        "faces": [face_json(f) for f in faces],
        "width": int(rgb.shape[1]),
        "height": int(rgb.shape[0]),
        "ms": round((time.perf_counter() - start) * 1000, 2),
    }
