"""The canonical label order and every dataset's mapping table.

Canonical order is FER2013's: angry, disgust, fear, happy, sad, surprise, neutral, with
contempt as an optional 8th class. Every reader maps its native ids or names to these
indices through one explicit table below; nothing else in the package hard-codes an order.
This module imports nothing heavy (no torch, no numpy).
"""

from __future__ import annotations

from .utils.errors import DataError

EMOTIONS7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
EMOTIONS8: tuple[str, ...] = EMOTIONS7 + ("contempt",)
UNCERTAIN = "uncertain"

# FER2013 `emotion` column: 0..6 is already the canonical order.
FER2013_TO_CANON: dict[int, int] = {i: i for i in range(7)}

# FER+ `fer2013new.csv` vote columns, in file order -> canonical index (None = dropped class).
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
FERPLUS_TO_CANON: dict[str, int | None] = {
    "neutral": 6,
    "happiness": 3,
    "surprise": 5,
    "sadness": 4,
    "anger": 0,
    "disgust": 1,
    "fear": 2,
    "contempt": 7,
    "unknown": None,
    "NF": None,
}

# RAF-DB basic `list_patition_label.txt`: 1 surprise, 2 fear, 3 disgust, 4 happiness,
# 5 sadness, 6 anger, 7 neutral.
RAFDB_TO_CANON: dict[int, int] = {1: 5, 2: 2, 3: 1, 4: 3, 5: 4, 6: 0, 7: 6}

# AffectNet expression ids: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust,
# 6 anger, 7 contempt, 8 none, 9 uncertain, 10 no-face (8..10 are dropped).
AFFECTNET_TO_CANON: dict[int, int] = {0: 6, 1: 3, 2: 4, 3: 5, 4: 2, 5: 1, 6: 0, 7: 7}

# ExpW `label.lst` expression ids: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise,
# 6 neutral (the canonical order).
EXPW_TO_CANON: dict[int, int] = {i: i for i in range(7)}

# The official ResEmoteNet repository's checkpoints emit logits in this order.
OFFICIAL_RESEMOTENET_ORDER: tuple[str, ...] = (
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "neutral",
)

# face-api's FaceExpressionNet (@vladmandic/face-api, src/faceExpressionNet/FaceExpressions.ts,
# FACE_EXPRESSION_LABELS) emits its 7 probabilities in this order.
FACEAPI_ORDER: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
FACEAPI_TO_CANON: dict[str, int] = {
    "neutral": 6,
    "happy": 3,
    "sad": 4,
    "angry": 0,
    "fearful": 2,
    "disgusted": 1,
    "surprised": 5,
}

# Folder names a team might use for its own data -> canonical name.
SYNONYMS: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sad": "sad",
    "sadness": "sad",
    "unhappy": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "suprise": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "none": "neutral",
    "contempt": "contempt",
    "contemptuous": "contempt",
}


def label_names(num_classes: int) -> tuple[str, ...]:
    """Canonical label names for a 7- or 8-class problem."""
    if num_classes == 7:
        return EMOTIONS7
    if num_classes == 8:
        return EMOTIONS8
    raise DataError(f"num_classes must be 7 or 8, got {num_classes}")


def canonical_name(name: str) -> str:
    """Map a folder or label name (any case, common synonyms) to a canonical emotion name."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in SYNONYMS:
        return SYNONYMS[key]
    valid = sorted(set(SYNONYMS.values()))
    raise DataError(f"unknown emotion name {name!r}; valid names: {', '.join(valid)}")


def remap_indices(src: tuple[str, ...], dst: tuple[str, ...]) -> list[int]:
    """For each name in ``dst`` the index it has in ``src`` (names must all be present)."""
    missing = [n for n in dst if n not in src]
    if missing:
        raise DataError(f"labels {missing} are missing from {list(src)}")
    return [src.index(n) for n in dst]


def shared_labels(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    """Labels present in both sets, in the order of ``a``."""
    return tuple(n for n in a if n in b)
