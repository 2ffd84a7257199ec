"""``resemotenet serve``: one process that loads a model once and serves it over HTTP.

Endpoints for still images and face crops (concurrent requests share one model call through a
micro-batcher), jobs for video files and camera streams, a review queue for the faces the model
is unsure of, Prometheus metrics, and a browser page (``static/``, shipped in the wheel, no CDN).
FastAPI and uvicorn are an optional extra (``[serve]``); they are imported only when the service
is built, so the rest of the toolkit works without them.
"""

from __future__ import annotations

from typing import Any

from ..utils.errors import extra_error


def require_extra() -> None:
    """Raise ``MissingExtraError`` naming the ``serve`` extra when FastAPI or uvicorn is missing."""
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn")):
        try:
            __import__(module)
        except ImportError as exc:
            raise extra_error(package, "serve", exc) from exc


def create_app(settings: Any, predictor: Any = None) -> Any:
    """The FastAPI application for ``settings`` (a ``ServeSettings``); see ``serve.app``."""
    require_extra()
    from .app import create_app as _create

    return _create(settings, predictor)


__all__ = ["create_app", "require_extra"]
