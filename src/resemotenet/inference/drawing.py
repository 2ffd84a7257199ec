"""Annotated copies (only when the user asks): boxes and labels drawn on frames, faces
optionally pixelated, still images and videos written atomically under an output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..labels import UNCERTAIN
from ..utils.errors import DataError
from .faces import Box, expand_box
from .results import FaceResult

_ENCODABLE = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_COLORS = {
    "angry": (230, 40, 40),
    "disgust": (120, 170, 40),
    "fear": (150, 60, 200),
    "happy": (250, 200, 0),
    "sad": (40, 110, 230),
    "surprise": (250, 130, 0),
    "neutral": (200, 200, 200),
    "contempt": (160, 100, 60),
    UNCERTAIN: (255, 255, 255),
}


def blur_faces(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Pixelate each face (plus a margin for hair and ears) into ~8x8 blocks: unlike a
    Gaussian blur, what is left carries too little detail to recognise or to de-blur."""
    import cv2

    out = rgb.copy()
    h, w = out.shape[:2]
    for box in boxes:
        x0, y0, x1, y1 = expand_box(box, 0.3, w, h, square=False)
        region = out[y0:y1, x0:x1]
        small = cv2.resize(region, (8, 8), interpolation=cv2.INTER_AREA)
        out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return out


def draw_faces(rgb: np.ndarray, faces: list[FaceResult], blur: bool = False) -> np.ndarray:
    """A copy of the RGB frame with each face boxed and labelled ('happy 0.91 #2')."""
    import cv2

    out = blur_faces(rgb, [f.box for f in faces]) if blur else rgb.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)
    thick = max(1, round(max(out.shape[:2]) / 400))
    for f in faces:
        x0, y0, x1, y1 = f.box
        color = _COLORS.get(f.label, (0, 255, 0))
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), color, thick)
        text = f"{f.label} {f.score:.2f}" + ("" if f.track is None else f" #{f.track}")
        scale = max(0.4, (x1 - x0) / 220)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        ty = y0 - base - 2 if y0 - th - base - 2 >= 0 else y1 + th + 2
        cv2.rectangle(out, (x0, ty - th - 2), (x0 + tw + 2, ty + base), color, -1)
        cv2.putText(out, text, (x0 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out


class AnnotatedOutput:
    """Writes annotated copies into a folder: a JPEG per still image, a video per stream.

    Only created when the user asks (``--save-annotated``); each file appears atomically
    (a still image is renamed into place; a video keeps a ``.partial`` name until closed).
    """

    def __init__(self, directory: str | Path, blur: bool = False, fps: float = 15.0):
        self.dir, self.blur, self.default_fps = Path(directory), blur, fps
        self.dir.mkdir(parents=True, exist_ok=True)
        self._videos: dict[str, tuple[Any, Path, Path]] = {}
        self.written: list[Path] = []
        self._taken: set[Path] = set()

    def image(self, name: str, rgb: np.ndarray, faces: list[FaceResult]) -> Path:
        import cv2

        from ..utils.io import atomic_write

        suffix = Path(name).suffix.lower()
        ext = suffix if suffix in _ENCODABLE else ".png"  # the input's own format where OpenCV writes it
        dst = self._unique(self.dir / Path(name).with_suffix(ext))
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(ext, cv2.cvtColor(draw_faces(rgb, faces, self.blur), cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise DataError(f"{dst}: could not encode the annotated image")
        atomic_write(dst, lambda p: p.write_bytes(buf.tobytes()))
        self.written.append(dst)
        return dst

    def _unique(self, dst: Path) -> Path:
        """Two inputs never share an annotated copy: a name taken in this run gets ``-2``, ``-3``..."""
        n, candidate = 1, dst
        while candidate in self._taken:
            n += 1
            candidate = dst.with_name(f"{dst.stem}-{n}{dst.suffix}")
        self._taken.add(candidate)
        return candidate

    def frame(self, name: str, rgb: np.ndarray, faces: list[FaceResult], fps: float | None) -> None:
        import cv2

        if name not in self._videos:
            dst = self._unique(self.dir / Path(name).with_suffix(".mp4"))
            tmp = dst.with_name(f".{dst.stem}.partial.mp4")
            tmp.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps or self.default_fps, (w, h))
            if not writer.isOpened():
                raise DataError(f"{dst}: cannot write an annotated video (no mp4v encoder)")
            self._videos[name] = (writer, tmp, dst)
        self._videos[name][0].write(cv2.cvtColor(draw_faces(rgb, faces, self.blur), cv2.COLOR_RGB2BGR))

    def close_video(self, name: str) -> None:
        if name in self._videos:
            writer, tmp, dst = self._videos.pop(name)
            writer.release()
            tmp.replace(dst)
            self.written.append(dst)

    def close(self) -> None:
        for name in list(self._videos):
            self.close_video(name)
