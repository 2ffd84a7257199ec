"""Soft targets from face-api's FaceExpressionNet (``models.faceapi``), blended into the training targets.

The net was trained on other faces than FER2013's (undisclosed data, likely posed sets too): its
reading of a training face is a second opinion about what that face shows, at a low weight.
It is overconfident, so its probabilities are tempered first (T ~ 4):

    target = (1 - weight) * target + weight * softmax(log p_faceapi / T)

where ``target`` is the reader's own (FER2013's one-hot label, or its blend with FER+ votes
under ``ferplus=``). The teacher's probabilities are computed once per training set and kept in
the cache folder, keyed by the teacher's weights and the faces; a later run reads them back.
The teacher is face-api's, not a checkpoint of ours: online distillation from our own
checkpoints is ``tasks.DistillationTask`` (config key ``teacher``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np

from ..data.dataset import Split, materialize
from ..models.faceapi import FaceExpressionNet
from ..utils.errors import ConfigError
from ..utils.io import cache_arrays, cache_dir, load_cached
from .evaluator import predict_probs


def teacher_probs(split: Split, net: FaceExpressionNet, progress: bool = True) -> np.ndarray:
    """(N, 7) probabilities of face-api's net for every face of ``split`` (canonical order, T=1),
    from the cache when this net has scored these faces before."""
    digest = hashlib.sha256(net.source.encode())
    if split.images is not None:
        digest.update(np.ascontiguousarray(split.images).data)
    else:
        digest.update(
            json.dumps([split.source, split.paths, None if split.boxes is None else split.boxes.tolist()]).encode()
        )
    cached = cache_dir() / f"faceapi-probs-{digest.hexdigest()[:20]}.npy"
    if (hit := load_cached(cached)) is not None and hit.shape == (len(split), len(net.labels)):
        return hit
    spec = net.preprocess
    faces = split.images if split.images is not None else materialize(split, spec.size)
    probs = predict_probs(net, faces, spec, progress=progress).astype(np.float32)
    if split.cacheable:  # a team's own faces leave no trace in the cache folder
        cache_arrays(cached, array=probs)
    return probs


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row: T > 1 flattens an overconfident teacher."""
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, None)) / temperature
    e = np.exp(logp - logp.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def blend(split: Split, teacher: np.ndarray, teacher_labels: tuple[str, ...], weight: float) -> np.ndarray:
    """(N, C) targets in the split's label order: its own (soft votes or one-hot labels) mixed
    with the teacher's distribution at ``weight``; a class the teacher lacks (contempt) gets 0 from it."""
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"faceapi_weight must lie in [0, 1], got {weight}")
    names = tuple(split.label_names)
    own = split.soft if split.soft is not None else np.eye(len(names), dtype=np.float32)[split.labels]
    mapped = np.zeros((len(split), len(names)), np.float32)
    for j, name in enumerate(names):
        if name in teacher_labels:
            mapped[:, j] = teacher[:, teacher_labels.index(name)]
    return ((1.0 - weight) * own + weight * mapped).astype(np.float32)


def with_faceapi_targets(
    split: Split, net: FaceExpressionNet, weight: float, temperature: float, progress: bool = True
) -> Split:
    """``split`` with face-api's tempered probabilities blended into its targets (``soft``)."""
    if temperature <= 0:
        raise ConfigError(f"faceapi_temperature must be > 0, got {temperature}")
    probs = temper(teacher_probs(split, net, progress), temperature)
    return replace(split, soft=blend(split, probs, tuple(net.labels), weight))
