"""Bytes from a request to an RGB array: ``resemotenet.imaging`` decodes, this module gives each
refusal its HTTP status. Order of checks, cheapest first: empty (400), not a known image
signature (415), declared size beyond the pixel limit read from the header alone before any
decoding (413, the guard against decompression bombs), then decoding, where a file that ends
early is refused (400) rather than analysed half grey.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import imaging
from ..utils.errors import DataError
from .errors import BadRequest, TooLarge, UnsupportedMedia


def _http(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except imaging.ImageTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except imaging.UnsupportedFormat as exc:
        raise UnsupportedMedia(str(exc)) from None
    except DataError as exc:
        raise BadRequest(str(exc)) from None


def sniff_image(data: bytes) -> str:
    return _http(imaging.sniff_image, data)


def sniff_video(data: bytes) -> str:
    return _http(imaging.sniff_video, data)


def declared_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    return _http(imaging.declared_size, data, max_pixels)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) from encoded bytes, or the HTTP error that refuses them."""
    return _http(imaging.decode_bytes, data, max_pixels)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    return _http(imaging.encode_jpeg, rgb, quality)
