"""Images in, arrays out, safely: the one place files and bytes are decoded (no torch).

Every decoder in the package goes through here: dataset readers, the Predictor, the service
and the batch jobs. The content decides, never the file name; the declared size is read from
the header alone and refused beyond ``MAX_PIXELS`` before any decoding (the guard against
decompression bombs); a JPEG or PNG that ends early is refused rather than analysed half grey.
Errors are ``DataError`` subclasses naming the file; the service maps them to HTTP statuses.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .utils.errors import DataError

MAX_PIXELS = 40_000_000  # decompression-bomb guard for every image we decode
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pnm"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"})
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


class ImageTooLarge(DataError):
    """The image declares more pixels than the limit."""


class UnsupportedFormat(DataError):
    """The bytes are not an image (or clip) format we read."""


class EmptyInput(DataError):
    """No bytes at all."""


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def media_files(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(images, videos) under a folder, recursive and sorted, by extension; hidden files and
    folders skipped. The one folder walk of ``predict DIR``, the batch jobs and the service."""
    root = Path(folder)
    images, videos = [], []
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not p.is_file():
            continue
        if is_image(p):
            images.append(p)
        elif is_video(p):
            videos.append(p)
    return images, videos


def synthetic_faces(n: int, side: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 (n, side, side) face-like images (a bright oval and a label-dependent mouth): used
    only where no real faces are available, and always reported as such."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = 90 + 60 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.08)
    out = np.empty((n, side, side), np.uint8)
    for i in range(n):
        label = i % 7
        img = base.copy()
        mouth = np.abs(yy - (0.72 + 0.96 * (label - 3) / 3.0 * (xx - 0.5) ** 2)) < 0.04
        img[mouth & (np.abs(xx - 0.5) < 0.2)] = 20 + 25 * label
        img += rng.normal(0, 6, img.shape)
        out[i] = np.clip(img, 0, 255)
    return out


# ---- files ---------------------------------------------------------------------------------------
def read_image(path: str | Path, box: np.ndarray | None = None) -> np.ndarray:
    """Decode one image file as uint8 RGB (H, W, 3), optionally cropped to ``box`` (x0, y0, x1, y1).

    Raises ``DataError`` naming the file for missing, unreadable, truncated or huge images.
    """
    import cv2

    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror})") from exc
    if data.size == 0:
        raise DataError(f"{p}: empty file")
    _check_pixels(p, data)
    try:
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV's own size guard (formats PIL cannot parse)
        img = None
    if img is None:
        raise DataError(f"{p}: not a readable image (unknown format or truncated)")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        h, w = img.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"{p}: face box {tuple(int(v) for v in box)} lies outside the {w}x{h} image")
        img = img[y0:y1, x0:x1]
    return np.ascontiguousarray(img)


def _check_pixels(p: Path, data: np.ndarray) -> None:
    """Refuse decompression bombs before decoding, from the header alone."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:  # PIL refuses > 2x its own limit before we can look
        raise ImageTooLarge(f"{p}: declared size exceeds the {MAX_PIXELS:,}-pixel limit") from exc
    except Exception:
        return  # let OpenCV decide (it reports unreadable files)
    if w * h > MAX_PIXELS:
        raise ImageTooLarge(f"{p}: {w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel limit")


def check_frame_size(width: float, height: float, name: str = "video") -> None:
    """Refuse video frames beyond the pixel limit (a video's declared frame size)."""
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: {int(width)}x{int(height)} frames exceed the {MAX_PIXELS:,}-pixel limit")


# ---- bytes ---------------------------------------------------------------------------------------
def sniff_image(data: bytes) -> str:
    """The image format named by the first bytes."""
    if not data:
        raise EmptyInput("empty body: send the image bytes")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, kind in IMAGE_SIGNATURES:
        if data.startswith(magic):
            return kind
    raise UnsupportedFormat("not an image this service reads (JPEG, PNG, WebP, BMP or TIFF, judged by content)")


def sniff_video(data: bytes) -> str:
    """The container named by the first bytes of a clip."""
    if not data:
        raise EmptyInput("empty body: send the clip's bytes")
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if data[:4] == b"RIFF" and data[8:11] == b"AVI":
        return "avi"
    raise UnsupportedFormat("not a video this service reads (MP4/MOV, MKV/WebM or AVI, judged by content)")


def _complete(data: bytes, kind: str) -> bool:
    """Whether a JPEG or PNG holds its end marker (OpenCV decodes a cut file into half grey)."""
    if kind == "jpeg":
        sos = data.rfind(b"\xff\xda")  # the scan data cannot hold 0xFFD9 (it stuffs 0xFF bytes)
        return sos >= 0 and data.find(b"\xff\xd9", sos) >= 0
    if kind == "png":
        return data.rfind(b"IEND") >= len(data) - 64
    return True


def declared_size(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header; ``ImageTooLarge`` beyond ``max_pixels``."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image declares more than the {max_pixels:,}-pixel limit") from exc
    except Exception as exc:  # PIL raises many types for a damaged header
        raise DataError("not a readable image (damaged header)") from exc
    if w * h > max_pixels:
        raise ImageTooLarge(f"{w}x{h} image exceeds the {max_pixels:,}-pixel limit")
    return w, h


def decode_bytes(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """uint8 RGB (H, W, 3) from encoded bytes, with every check above."""
    import cv2

    kind = sniff_image(data)
    declared_size(data, max_pixels)
    if not _complete(data, kind):
        raise DataError(f"truncated {kind.upper()}: the file ends before the image does")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        raise DataError(f"not a readable {kind.upper()} (damaged or truncated)")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("could not encode the crop as JPEG")
    return buf.tobytes()
