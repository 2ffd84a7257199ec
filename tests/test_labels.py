"""Every dataset's native label -> canonical name, spelled out from the datasets' own documentation."""

from __future__ import annotations

import pytest

from resemotenet import labels as L
from resemotenet.utils.errors import DataError


def named(table: dict) -> dict:
    """A mapping table with canonical indices replaced by canonical names."""
    return {k: None if v is None else L.EMOTIONS8[v] for k, v in table.items()}


def test_canonical_order_is_fer2013s_with_contempt_eighth():
    assert L.EMOTIONS7 == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert L.EMOTIONS8 == L.EMOTIONS7 + ("contempt",)
    assert L.label_names(7) == L.EMOTIONS7 and L.label_names(8) == L.EMOTIONS8
    with pytest.raises(DataError, match="7 or 8"):
        L.label_names(6)


def test_fer2013_table():
    # Kaggle fer2013.csv: 0=Angry, 1=Disgust, 2=Fear, 3=Happy, 4=Sad, 5=Surprise, 6=Neutral
    assert named(L.FER2013_TO_CANON) == {
        0: "angry",
        1: "disgust",
        2: "fear",
        3: "happy",
        4: "sad",
        5: "surprise",
        6: "neutral",
    }


def test_ferplus_table():
    assert L.FERPLUS_COLUMNS == (
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
    assert named(L.FERPLUS_TO_CANON) == {
        "neutral": "neutral",
        "happiness": "happy",
        "surprise": "surprise",
        "sadness": "sad",
        "anger": "angry",
        "disgust": "disgust",
        "fear": "fear",
        "contempt": "contempt",
        "unknown": None,
        "NF": None,
    }


def test_rafdb_table():
    # RAF-DB basic: 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral
    assert named(L.RAFDB_TO_CANON) == {
        1: "surprise",
        2: "fear",
        3: "disgust",
        4: "happy",
        5: "sad",
        6: "angry",
        7: "neutral",
    }


def test_affectnet_table():
    # AffectNet: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt,
    # 8 None, 9 Uncertain, 10 No-Face (8-10 are not expressions and have no entry)
    assert named(L.AFFECTNET_TO_CANON) == {
        0: "neutral",
        1: "happy",
        2: "sad",
        3: "surprise",
        4: "fear",
        5: "disgust",
        6: "angry",
        7: "contempt",
    }
    assert not {8, 9, 10} & set(L.AFFECTNET_TO_CANON)


def test_expw_table():
    # ExpW label.lst: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral
    assert named(L.EXPW_TO_CANON) == {
        0: "angry",
        1: "disgust",
        2: "fear",
        3: "happy",
        4: "sad",
        5: "surprise",
        6: "neutral",
    }


@pytest.mark.parametrize(
    "table", [L.FER2013_TO_CANON, L.FERPLUS_TO_CANON, L.RAFDB_TO_CANON, L.AFFECTNET_TO_CANON, L.EXPW_TO_CANON]
)
def test_tables_are_one_to_one(table):
    kept = [v for v in table.values() if v is not None]
    assert len(kept) == len(set(kept))
    assert set(kept) >= set(range(7))  # every canonical emotion is reachable from every dataset


def test_official_resemotenet_order_is_a_permutation():
    assert L.OFFICIAL_RESEMOTENET_ORDER == ("happy", "surprise", "sad", "angry", "disgust", "fear", "neutral")
    assert L.remap_indices(L.OFFICIAL_RESEMOTENET_ORDER, L.EMOTIONS7) == [3, 4, 5, 0, 2, 1, 6]


def test_faceapi_table():
    # @vladmandic/face-api 1.7.15, src/faceExpressionNet/FaceExpressions.ts: FACE_EXPRESSION_LABELS
    assert L.FACEAPI_ORDER == ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
    assert list(L.FACEAPI_TO_CANON) == list(L.FACEAPI_ORDER)
    assert named(L.FACEAPI_TO_CANON) == {
        "neutral": "neutral",
        "happy": "happy",
        "sad": "sad",
        "angry": "angry",
        "fearful": "fear",
        "disgusted": "disgust",
        "surprised": "surprise",
    }
    assert sorted(L.FACEAPI_TO_CANON.values()) == list(range(7))  # a permutation of the 7 classes
    assert all(L.canonical_name(n) == L.EMOTIONS7[i] for n, i in L.FACEAPI_TO_CANON.items())


@pytest.mark.parametrize(
    "name,canon",
    [
        ("Happy", "happy"),
        ("happiness", "happy"),
        (" Anger ", "angry"),
        ("SUPRISE", "surprise"),
        ("fearful", "fear"),
        ("Sadness", "sad"),
        ("disgusted", "disgust"),
        ("contempt", "contempt"),
        ("neutral", "neutral"),
    ],
)
def test_canonical_name_synonyms(name, canon):
    assert L.canonical_name(name) == canon


def test_canonical_name_rejects_unknown_and_lists_valid():
    with pytest.raises(DataError, match=r"unknown emotion name 'bored'; valid names: angry, contempt, disgust"):
        L.canonical_name("bored")


def test_synonyms_only_target_canonical_names():
    assert set(L.SYNONYMS.values()) == set(L.EMOTIONS8)


def test_remap_and_shared_labels():
    assert L.remap_indices(L.EMOTIONS8, L.EMOTIONS7) == list(range(7))
    with pytest.raises(DataError, match="contempt"):
        L.remap_indices(L.EMOTIONS7, L.EMOTIONS8)
    assert L.shared_labels(L.EMOTIONS8, ("neutral", "contempt", "happy")) == ("happy", "neutral", "contempt")
