"""Bytes from a request to an RGB array, safely: the content decides, never the file name.

Order of checks, cheapest first: empty (400), not a known image signature (415), declared size
beyond the pixel limit read from the header alone before any decoding (413, the guard against
decompression bombs), then decoding, where a file that ends early is refused (400) rather than
analysed half grey.
"""

from __future__ import annotations

import io

import numpy as np

from .errors import BadRequest, TooLarge, UnsupportedMedia

IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
VIDEO_TYPES = ("mp4", "matroska", "avi")


def sniff_image(data: bytes) -> str:
    """The image format named by the first bytes, or ``UnsupportedMedia``."""
    if not data:
        raise BadRequest("empty body: send the image bytes")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in IMAGE_SIGNATURES:
        if data.startswith(magic):
            return kind
    raise UnsupportedMedia("not an image this service reads (JPEG, PNG, WebP, BMP or TIFF, judged by content)")


def sniff_video(data: bytes) -> str:
    """The container named by the first bytes of a clip, or ``UnsupportedMedia``."""
    if not data:
        raise BadRequest("empty body: send the clip's bytes")
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if data[:4] == b"RIFF" and data[8:11] == b"AVI":
        return "avi"
    raise UnsupportedMedia("not a video this service reads (MP4/MOV, MKV/WebM or AVI, judged by content)")


def _complete(data: bytes, kind: str) -> bool:
    """Whether a JPEG or PNG holds its end marker (OpenCV decodes a cut file into half grey)."""
    if kind == "jpeg":
        sos = data.rfind(b"\xff\xda")  # the scan data cannot hold 0xFFD9 (it stuffs 0xFF bytes)
        return sos >= 0 and data.find(b"\xff\xd9", sos) >= 0
    if kind == "png":
        return data.rfind(b"IEND") >= len(data) - 64
    return True


def declared_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the header; ``TooLarge`` beyond ``max_pixels``."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image declares more than the {max_pixels:,}-pixel limit") from exc
    except Exception as exc:  # PIL raises many types for a damaged header
        raise BadRequest("not a readable image (damaged header)") from exc
    if w * h > max_pixels:
        raise TooLarge(f"{w}x{h} image exceeds the {max_pixels:,}-pixel limit")
    return w, h


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """uint8 RGB (H, W, 3) from encoded bytes, with every check above."""
    import cv2

    kind = sniff_image(data)
    declared_size(data, max_pixels)
    if not _complete(data, kind):
        raise BadRequest(f"truncated {kind.upper()}: the file ends before the image does")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise BadRequest(f"not a readable {kind.upper()} (damaged or truncated)")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise BadRequest("could not encode the crop as JPEG")
    return buf.tobytes()
