"""The Predictor: every face in an image, a folder, a video or a webcam, with its emotion.

Face crops are preprocessed exactly as the model's own metadata says (size, channels, mean,
std travel with the weights) through ``data.transforms``, the one place preprocessing is
defined, and probabilities are ``softmax(logits / temperature)`` with the temperature the
model was calibrated with. In a video, faces are followed from frame to frame by box overlap
(IoU) and each track's probabilities are smoothed with an exponential moving average, so the
label does not flicker with every frame's noise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..card import ModelCard
from ..imaging import VIDEO_EXTS, read_image
from ..labels import UNCERTAIN
from ..metrics import softmax
from ..utils.errors import ConfigError, DataError
from .faces import DEFAULT_DETECTOR, Box, Detection, align_face, create_detector, crop, expand_box
from .results import FaceResult, FrameResult
from .sources import Frame, Source, open_source
from .tracking import FaceFollower, IoUTracker, _check_smoothing, box_iou, iou  # noqa: F401  (older spellings)

TTA = ("none", "flip")  # test-time augmentation a Predictor offers (``engine.evaluator`` has ten-crop too)
ImageLike = str | os.PathLike | np.ndarray | Any  # Any: a PIL.Image (PIL is imported lazily)


def _backend(model: str | os.PathLike | nn.Module | Any | None, device: str, engine: str | None = None) -> Any:
    """A callable ``backend(x) -> logits`` with ``.card``, from whatever the caller passed."""
    from ..utils.runtime import resolve_device
    from .backends import open_backend

    resolve_device(device)  # a typo'd or unavailable device is refused whatever the backend
    if isinstance(model, nn.Module) and not getattr(model, "pretrained_cfg", None):
        raise ConfigError(
            "the model has no pretrained_cfg (labels and preprocessing); load it with resemotenet.load_model"
        )
    if model is not None and not isinstance(model, nn.Module) and callable(model) and hasattr(model, "card"):
        return model  # an already opened backend (torch or onnxruntime)
    return open_backend(model, device=device, engine=engine)


@dataclass(frozen=True)
class Face:
    """One located face: its ``box`` in the frame, the ``crop`` the model will see (framed as the
    card says) and the detector's ``detection`` (score, landmarks) when there is one."""

    box: Box
    crop: np.ndarray
    detection: Detection | None = None


class Predictor:
    """Emotions of every face in images and videos, in three public stages.

    ``locate(rgb) -> faces`` (the detector and the card's framing), ``score(crops) -> probs`` (the
    card's one transform, the backend and the calibrated temperature) and ``decide(frame, faces,
    probs, tracker) -> results`` (tracking, the threshold and top-2). ``predict``,
    ``predict_source``, the service, the batch worker and the review queue compose these three;
    nothing else re-implements them.

    ``model``: None (the shipped model), a checkpoint or ``.onnx`` path, or a loaded module.
    ``detector``: a registry name ('centerface', 'haar', 'mediapipe', 'yunet') or any callable
    ``rgb -> list[Detection]``; ``detector_options`` go to the named detector's constructor.
    ``margin`` and ``align`` default to the model card's framing (``ModelCard.framing``: the
    margin per detector, measured by ``benchmarks/framing.py``). ``margin``: the crop grows by this
    fraction of the face box. ``align``: when the detector gives landmarks (centerface and mediapipe
    do), a face whose eyes tilt by 3 degrees or more is rotated level before it is cropped
    (``faces.align_face``; on for the shipped models: +8.6 points on turned PublicTest faces,
    ``benchmarks/detectors.py --align 120``). ``min_confidence``: below it a face is labelled
    'uncertain' with its top-2 candidates, for a person to decide; None (the default) means the
    card's calibrated ``threshold`` (0 when the card recommends none), 0 switches it off.
    ``smoothing``: EMA weight of a video track's past probabilities (0 = none).
    ``redetect_every``: in a video, the whole frame is searched for faces every N analysed frames
    and only around the known faces in between (``inference.tracking.FaceFollower``; 1 = whole
    frame every time). ``engine``: the runtime of an ``.onnx`` model ('auto', 'onnxruntime',
    'openvino'; ``inference.backends.open_onnx``). ``tta``: 'flip' averages each face's
    probabilities with its mirror image's (twice the model's work per face; RECIPES.md, "Breadth
    from faces elsewhere", has what it buys), 'none' (the default) scores the crop once. Arrays
    passed to ``predict`` are RGB (``bgr=True`` for arrays from OpenCV).
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module | None = None,
        detector: str | Callable[[np.ndarray], list[Detection]] = DEFAULT_DETECTOR,
        margin: float | None = None,
        min_confidence: float | None = None,
        batch_size: int = 32,
        smoothing: float = 0.6,
        device: str = "cpu",
        detector_options: dict[str, Any] | None = None,
        redetect_every: int = 10,
        align: bool | None = None,
        engine: str | None = None,
        tta: str = "none",
    ):
        if tta not in TTA:
            raise ConfigError(f"unknown test-time augmentation {tta!r}; valid: {', '.join(TTA)}")
        self.tta = tta
        self.backend = _backend(model, device, engine)
        self.model_source = model  # what ``torch_model`` loads for gradients (the backend may be fused)
        self._torch: nn.Module | None = None
        if self.backend.card is None:
            raise ConfigError(
                "the model has no model card (labels and preprocessing); load it with resemotenet.load_model"
            )
        self.card: ModelCard = self.backend.card
        self.labels: tuple[str, ...] = tuple(self.card.labels)
        self.spec = self.card.preprocess
        self.transform = self.card.transforms()
        self.temperature = self.card.temperature
        self.min_confidence = resolve_threshold(min_confidence, self.card)
        framing = self.card.framing  # the crop the model was trained on, unless the caller overrides it
        name = detector if isinstance(detector, str) else None
        margin = framing.margin_for(name) if margin is None else margin
        align = framing.align if align is None else align
        if batch_size < 1 or margin < 0 or redetect_every < 1:
            raise ConfigError("batch_size and redetect_every must be >= 1 and margin >= 0")
        self.detector = detector if callable(detector) else create_detector(detector, **(detector_options or {}))
        self.detector_name = name
        self.margin, self.redetect_every = margin, redetect_every
        self.align, self.square, self.shift_y = align, framing.square, framing.shift_y
        self.batch_size, self.smoothing = batch_size, _check_smoothing(smoothing)  # now, not at the first video

    # -- stage 1: locate -----------------------------------------------------------------------
    def locate(self, rgb: np.ndarray, detector: Callable[[np.ndarray], list[Detection]] | None = None) -> list[Face]:
        """Every face of an RGB frame, found by ``detector`` (default: the Predictor's own) and
        framed as the card says (margin per detector, square, shift, eye levelling)."""
        return [Face(d.box, self.frame_crop(rgb, d), d) for d in (detector or self.detector)(rgb)]

    def frame_crop(self, rgb: np.ndarray, d: Detection) -> np.ndarray:
        """The crop of one detection, framed as the model was trained (the card's framing)."""
        h, w = rgb.shape[:2]
        box = d.box
        if self.shift_y:  # the framing the model was trained on sits lower or higher on the face
            dy = int(round(self.shift_y * (box[3] - box[1])))
            box = (box[0], box[1] + dy, box[2], box[3] + dy)
        if self.align and d.landmarks is not None:
            return align_face(rgb, box, d.landmarks, self.margin)
        return crop(rgb, expand_box(box, self.margin, w, h, square=self.square))

    # -- stage 2: score ------------------------------------------------------------------------
    def score(self, crops: list[np.ndarray]) -> np.ndarray:
        """Calibrated probabilities (N, classes) for uint8 RGB (or grayscale) crops of any size:
        the card's transform, the backend, ``softmax(logits / temperature)`` (with ``tta='flip'``,
        the mean of the crop's and its mirror image's)."""
        if not crops:
            return np.zeros((0, len(self.labels)), np.float32)
        out = []
        for i in range(0, len(crops), self.batch_size):
            x = self.transform(crops[i : i + self.batch_size])
            probs = calibrated_softmax(self.backend(x), self.temperature)
            if self.tta == "flip":
                probs = (probs + calibrated_softmax(self.backend(x.flip(-1).contiguous()), self.temperature)) / 2
            out.append(probs)
        return np.concatenate(out)

    # -- stage 3: decide -----------------------------------------------------------------------
    def decide(
        self,
        frame: Frame,
        faces: Sequence[Face | Box],
        probs: np.ndarray,
        tracker: IoUTracker | None = None,
    ) -> list[FaceResult]:
        """Results for one frame's faces: with a ``tracker`` (video) faces are numbered and their
        probabilities smoothed; below the threshold a face is 'uncertain' with its top-2."""
        boxes = [f.box if isinstance(f, Face) else tuple(f) for f in faces]
        ids: list[int | None] = [None] * len(boxes)
        if tracker is not None and boxes:
            ids, probs = tracker.update(boxes, probs)
        return [self._result(frame, b, p, t) for b, p, t in zip(boxes, probs, ids, strict=True)]

    def _result(self, frame: Frame, box: Box, probs: np.ndarray, track: int | None) -> FaceResult:
        order = np.argsort(probs)[::-1]
        score = float(probs[order[0]])
        label, top2 = self.labels[order[0]], None
        if score < self.min_confidence:
            label = UNCERTAIN
            top2 = [(self.labels[i], float(probs[i])) for i in order[:2]]
        probabilities = {n: float(p) for n, p in zip(self.labels, probs, strict=True)}
        return FaceResult(frame.source, frame.index, frame.timestamp, box, label, score, probabilities, track, top2)

    # -- older spellings of the stages -----------------------------------------------------------
    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        """Same as ``score``."""
        return self.score(crops)

    def detect(
        self, rgb: np.ndarray, detector: Callable[[np.ndarray], list[Detection]] | None = None
    ) -> list[tuple[Box, np.ndarray]]:
        """(face box, crop) pairs: ``locate`` as tuples."""
        return [(f.box, f.crop) for f in self.locate(rgb, detector)]

    def follower(self) -> FaceFollower:
        """A fresh video face search (whole frame every ``redetect_every`` frames)."""
        return FaceFollower(self.detector, self.redetect_every)

    def torch_model(self) -> nn.Module:
        """The plain (unfused) torch module of this Predictor's weights, for gradients (Grad-CAM);
        loaded once, on first use (the backend may run a fused copy or another runtime)."""
        if self._torch is None:
            self._torch = load_torch_model(self.model_source)
        return self._torch

    def tracker(self) -> IoUTracker:
        """A fresh video tracker with this Predictor's smoothing."""
        return IoUTracker(smoothing=self.smoothing)

    # -- still images --------------------------------------------------------------------------
    def predict(self, image: ImageLike, bgr: bool = False) -> list[FaceResult]:
        """Every face of one still image (a path, a PIL image, or a uint8 array)."""
        rgb, name = _as_rgb(image, bgr)
        faces = self.locate(rgb)
        return self.decide(Frame(name, image=rgb), faces, self.score([f.crop for f in faces]))

    # -- sources -------------------------------------------------------------------------------
    def predict_source(
        self, source: str | os.PathLike | int | Source, stride: int = 1, max_frames: int | None = None
    ) -> Iterator[FrameResult]:
        """One ``FrameResult`` per frame of an image, folder, video or webcam (int), in order.

        Crops of consecutive frames are scored in batches of ``batch_size`` (a live webcam
        frame by frame). Bad items of a folder come back with ``error`` set; ``source.notes``
        (when a ``Source`` is passed) records irregularities such as a truncated video.
        """
        src = source if isinstance(source, Source) else open_source(source, stride, max_frames)
        if src.kind == "folder":
            yield from self._predict_folder(src)
            return
        moving = src.kind in ("video", "webcam")
        yield from self._predict_frames(
            src, self.tracker() if moving else None, self.follower() if moving else self.detector
        )

    def _predict_frames(self, src: Source, tracker: IoUTracker | None, detector: Any) -> Iterator[FrameResult]:
        pending: list[tuple[Frame, list[Face]]] = []
        n_crops = 0
        for frame in src:
            faces = [] if frame.error else self.locate(frame.image, detector)
            pending.append((frame, faces))
            n_crops += len(faces)
            if src.live or n_crops >= self.batch_size:
                yield from self._flush(pending, tracker)
                pending, n_crops = [], 0
        yield from self._flush(pending, tracker)

    def _predict_folder(self, src: Any) -> Iterator[FrameResult]:
        """A folder's images (one batch stream), then each of its videos as a video of its own."""
        from .sources import VideoSource

        if src.files or not src.videos:
            yield from self._predict_frames(src, None, self.detector)
        for path in src.videos:
            try:
                video = VideoSource(path, src.stride, src.max_frames)
            except DataError as exc:  # one unreadable video is a failed item, not the end of the folder
                yield FrameResult(str(path), error=str(exc))
                continue
            yield from self.predict_source(video)
            src.notes.extend(video.notes)

    def _flush(self, pending: list[tuple[Frame, list[Face]]], tracker: IoUTracker | None) -> Iterator[FrameResult]:
        probs = self.score([f.crop for _, faces in pending for f in faces])
        at = 0
        for frame, faces in pending:
            if frame.error:
                yield FrameResult(frame.source, frame.index, frame.timestamp, error=frame.error)
                continue
            results = self.decide(frame, faces, probs[at : at + len(faces)], tracker)
            at += len(faces)
            crops = [f.crop for f in faces]
            yield FrameResult(frame.source, frame.index, frame.timestamp, results, image=frame.image, crops=crops)


def load_torch_model(source: Any) -> nn.Module:
    """The plain torch module of a model source (a module, a shipped name, a checkpoint path or
    None for the default); an ONNX file or an opened backend has no gradients to give."""
    if isinstance(source, nn.Module):
        return source
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise ConfigError("explain needs a torch model: this Predictor was given an opened backend")
    if source is not None and str(source).lower().endswith(".onnx"):
        raise ConfigError("explain needs a torch checkpoint: an ONNX model gives no gradients here")
    from ..models import load_model

    return load_model(source)


def calibrated_softmax(logits: torch.Tensor | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``softmax(logits / temperature)`` as float32 numpy (``metrics.softmax``, the one softmax)."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().float().cpu().numpy()
    return softmax(logits, temperature).astype(np.float32)


def resolve_threshold(min_confidence: float | None, card: ModelCard) -> float:
    """The threshold a face must reach to be labelled: the caller's, else the card's, else 0."""
    value = card.threshold if min_confidence is None else min_confidence
    value = 0.0 if value is None else float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"min_confidence must be in [0, 1], got {value}")
    return value


def _rgb(img: np.ndarray) -> np.ndarray:
    """Grayscale crops become 3-channel so one batch can mix them with colour crops."""
    return np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img


def _as_rgb(image: ImageLike, bgr: bool) -> tuple[np.ndarray, str]:
    """uint8 RGB (H, W, 3) and a source name for a path, a PIL image or an array."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if path.suffix.lower() in VIDEO_EXTS:
            raise ConfigError(f"{path}: a video; use Predictor.predict_source for videos")
        return read_image(path), str(path)
    if isinstance(image, np.ndarray):
        arr, name = image, "<array>"
    elif hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image without importing PIL
        arr, name, bgr = np.asarray(image.convert("RGB")), getattr(image, "filename", "") or "<image>", False
    else:
        raise DataError(
            f"cannot read an image from a {type(image).__name__}; pass a path, a PIL image or a uint8 array"
        )
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise DataError(
            f"{name}: expected a uint8 image shaped (H, W), (H, W, 3) or (H, W, 4), got {arr.dtype} {arr.shape}"
        )
    if arr.ndim == 2 or arr.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)), name
    arr = arr[..., :3]
    return np.ascontiguousarray(arr[..., ::-1] if bgr else arr), name
