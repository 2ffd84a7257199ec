"""The service's front door, as plain ASGI middleware (it sees HTTP and WebSocket alike).

- Host check on a loopback bind: only a loopback name as the Host header (``localhost``, any
  of 127.0.0.0/8, ``[::1]``), so a web page elsewhere cannot reach the service through DNS
  rebinding.
- Origin check: a request that names an Origin must come from this service's own page, or from
  one listed in ``allow_origins`` (CORS stays closed, and this also stops cross-site form posts
  and WebSocket hijacking, which CORS does not cover). ``Origin: null`` (a local file, a
  sandboxed frame, a redirect) is a foreign page like any other unless it is listed.
- Token: when set, every ``/v1/`` and ``/metrics`` request carries it (``Authorization: Bearer``
  or ``X-API-Token``), compared in constant time. The page, ``/healthz`` and the OpenAPI page
  are open: they hold no data. The live WebSocket checks the token in its first message
  (browsers cannot set headers on a WebSocket).
- Body limit: ``Content-Length`` beyond the route's limit is refused at once (413); a chunked
  body is counted as it arrives and refused when it crosses the limit.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from .errors import TooLarge
from .settings import ServeSettings, is_loopback

OPEN_PREFIXES = ("/static/",)
OPEN_PATHS = frozenset({"/", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/favicon.ico"})


def token_ok(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; no token configured means every caller is let in."""
    if not expected:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host_name(host_header: str) -> str:
    return (urlsplit(f"//{host_header}").hostname or "").lower()


class Guard:
    def __init__(self, app: Any, settings: ServeSettings, metrics: Any = None):
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers, path = _headers(scope), scope.get("path", "")
        problem = self._check(scope["type"], path, headers)
        if problem:
            self._count(problem[2])
            return await _refuse(scope, send, *problem[:2])
        if scope["type"] == "http":
            limit = self.settings.max_clip_bytes if path == "/v1/jobs/upload" else self.settings.max_upload_bytes
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                self._count("body_too_large")
                return await _refuse(
                    scope, send, 413, f"body of {int(length):,} bytes exceeds the {limit:,}-byte limit"
                )
            receive = _counting(receive, limit, lambda: self._count("body_too_large"))
        return await self.app(scope, receive, send)

    def _count(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.refuse(reason)

    def _check(self, kind: str, path: str, headers: dict[str, str]) -> tuple[int, str, str] | None:
        """None, or (status, message, the reason counted in /metrics)."""
        host = headers.get("host", "")
        if self.settings.local and not is_loopback(_host_name(host)):
            return 403, "this service answers only to loopback names (localhost, 127.0.0.0/8, [::1])", "host"
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, host):
            return 403, f"requests from the page at {origin[:80]!r} are refused (not this service's own page)", "origin"
        if kind == "websocket" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        given = headers.get("x-api-token")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not token_ok(self.settings.token, given):
            return 401, "missing or wrong API token" if given else "this service needs an API token", "token"
        return None

    def _origin_ok(self, origin: str, host: str) -> bool:
        """The service's own page (same host and port), or an origin the settings list."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.settings.allow_origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host.lower()


def _counting(receive: Any, limit: int, on_refuse: Any) -> Any:
    """``receive`` that counts a body's bytes as they arrive (chunked bodies name no length) and
    raises ``TooLarge`` (413) once they cross the limit, before the rest is read."""
    seen = 0

    async def wrapped() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                on_refuse()
                raise TooLarge(f"body exceeds the {limit:,}-byte limit")
        return message

    return wrapped


async def _refuse(scope: dict[str, Any], send: Any, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + ([(b"www-authenticate", b"Bearer")] if status == 401 else []),
        }
    )
    await send({"type": "http.response.body", "body": body})
