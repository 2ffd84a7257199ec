"""Errors with an HTTP status: the service answers each with one line of JSON and keeps serving."""

from __future__ import annotations

from ..utils.errors import ResEmoteNetError


class ApiError(ResEmoteNetError):
    """A request the service refuses; ``status`` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def _status(name: str, code: int, doc: str) -> type[ApiError]:
    return type(name, (ApiError,), {"status": code, "__doc__": doc})


BadRequest = _status("BadRequest", 400, "The request is malformed (a broken image, a bad parameter).")
Unauthorized = _status("Unauthorized", 401, "No token, or a wrong one, where the service requires one.")
Forbidden = _status("Forbidden", 403, "A cross-origin request, or a path outside the allowed folder.")
NotFound = _status("NotFound", 404, "An unknown model, job or review item.")
TooLarge = _status("TooLarge", 413, "The body or the image's pixel count is over the limit.")
UnsupportedMedia = _status("UnsupportedMedia", 415, "The content is not an image (or clip) the service reads.")
Conflict = _status("Conflict", 409, "The item is not in the state the request needs (labelled twice, nothing to undo).")
Unprocessable = _status("Unprocessable", 422, "Well-formed but unusable (a label that is not a class).")
Unavailable = _status("Unavailable", 503, "The queue is full, or a stream does not answer.")


class Busy(Unavailable):  # type: ignore[misc,valid-type]
    """A full queue: 503 with ``Retry-After`` (seconds), so a client backs off instead of piling on."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after
