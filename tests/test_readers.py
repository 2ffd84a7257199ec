"""Readers of FER+, RAF-DB, AffectNet, ExpW and plain class folders, each on a fixture in the
dataset's exact release layout (tiny images written with OpenCV), plus checks on the real label
files in ../shared/data where present."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, write_fer2013_csv

from resemotenet.config import DataConfig
from resemotenet.data.dataset import build_splits, materialize
from resemotenet.data.readers import READERS, affectnet, expw, fer2013, ferplus, folder, get_reader, rafdb
from resemotenet.labels import EMOTIONS7, EMOTIONS8
from resemotenet.utils.errors import ConfigError, DataError

FERPLUS_CSV = SHARED / "ferplus" / "fer2013new.csv"
RAFDB_LIST = SHARED / "rafdb" / "list_patition_label.txt"


def imwrite(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def photo(h: int, w: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A black BGR photo, white inside ``box`` (x0, y0, x1, y1), so a crop is checkable."""
    img = np.zeros((h, w, 3), np.uint8)
    if box:
        x0, y0, x1, y1 = box
        img[y0:y1, x0:x1] = 255
    return img


def test_registry_lists_every_reader():
    for name in READERS:
        assert callable(get_reader(name))
    with pytest.raises(ConfigError, match="unknown dataset 'ckplus'; valid datasets: affectnet, expw"):
        get_reader("ckplus")


# --- FER+ ------------------------------------------------------------------------------------

# (Usage, name, votes: neutral happiness surprise sadness anger disgust fear contempt unknown NF)
FERPLUS_ROWS = [
    ("Training", "fer0000100.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),  # 0 neutral
    ("Training", "fer0000007.png", [0, 6, 4, 0, 0, 0, 0, 0, 0, 0]),  # 1 happy
    ("Training", "fer0000002.png", [0, 5, 5, 0, 0, 0, 0, 0, 0, 0]),  # 2 tie: no majority
    ("Training", "fer0000003.png", [1, 1, 1, 1, 4, 1, 1, 0, 0, 0]),  # 3 angry once 1-votes go
    ("Training", "fer0000004.png", [4, 0, 0, 0, 0, 0, 0, 6, 0, 0]),  # 4 contempt (7 cls: neutral)
    ("Training", "fer0000005.png", [4, 0, 0, 0, 0, 0, 0, 0, 6, 0]),  # 5 unknown
    ("Training", "fer0000006.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),  # 6 not a face
    ("Training", "", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),  # 7 empty name
    ("Training", "fer0000008.png", [2, 0, 2, 0, 0, 3, 3, 0, 0, 0]),  # 8 no majority
    ("Training", "fer0000009.png", [0, 0, 3, 0, 0, 0, 7, 0, 0, 0]),  # 9 fear
    ("PublicTest", "fer0000010.png", [0, 0, 9, 0, 0, 0, 0, 0, 1, 0]),  # 10 surprise
    ("PublicTest", "fer0000011.png", [0, 0, 0, 0, 8, 2, 0, 0, 0, 0]),  # 11 angry
    ("PublicTest", "fer0000012.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # 12 happy
    ("PublicTest", "fer0000013.png", [0, 0, 0, 2, 0, 0, 0, 0, 8, 0]),  # 13 unknown
    ("PrivateTest", "fer0000014.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),  # 14 neutral
    ("PrivateTest", "fer0000015.png", [0, 0, 0, 0, 4, 6, 0, 0, 0, 0]),  # 15 disgust
    ("PrivateTest", "fer0000016.png", [0, 0, 0, 5, 0, 0, 5, 0, 0, 0]),  # 16 tie
    ("PrivateTest", "fer0000017.png", [0, 0, 0, 0, 0, 0, 0, 10, 0, 0]),  # 17 contempt only
]
FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def write_ferplus(path: Path, rows=FERPLUS_ROWS, header: str = FERPLUS_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header] + [f"{u},{n}," + ",".join(map(str, v)) for u, n, v in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ferplus_root(tmp_path) -> Path:
    """``<tmp>/ferplus/fer2013new.csv`` beside ``<tmp>/fer2013/fer2013.csv`` (same 18 rows)."""
    (tmp_path / "fer2013").mkdir()
    write_fer2013_csv(tmp_path / "fer2013" / "fer2013.csv", {"Training": 10, "PublicTest": 4, "PrivateTest": 4})
    write_ferplus(tmp_path / "ferplus" / "fer2013new.csv")
    return tmp_path / "ferplus"


def test_ferplus_majority_8_classes_joins_by_row_order(ferplus_root):
    splits = ferplus.read(ferplus_root)  # finds ../fer2013/fer2013.csv on its own
    pixels = fer2013.read(ferplus_root.parent / "fer2013")
    names = {k: [EMOTIONS8[i] for i in v.labels] for k, v in splits.items()}
    assert names == {
        "train": ["neutral", "happy", "angry", "contempt", "fear"],
        "val": ["surprise", "angry", "happy"],
        "test": ["neutral", "disgust", "contempt"],
    }
    assert splits["train"].ids == ["row0", "row1", "row3", "row4", "row9"]
    assert splits["train"].label_names == EMOTIONS8 and splits["train"].soft is None
    # row 1 is named fer0000007.png: its pixels are still FER2013's row 1, not row 7
    np.testing.assert_array_equal(splits["train"].images[1], pixels["train"].images[1])
    np.testing.assert_array_equal(splits["test"].images[0], pixels["test"].images[0])


def test_ferplus_majority_7_classes_drops_contempt_votes(ferplus_root):
    splits = ferplus.read(ferplus_root / "fer2013new.csv", num_classes=7)
    assert splits["train"].label_names == EMOTIONS7
    assert [EMOTIONS7[i] for i in splits["train"].labels] == ["neutral", "happy", "angry", "neutral", "fear"]
    assert splits["test"].ids == ["row14", "row15"]


def test_ferplus_soft_labels(ferplus_root):
    train = ferplus.read(ferplus_root, mode="soft")["train"]
    assert train.ids == ["row0", "row1", "row2", "row3", "row4", "row8", "row9"]
    assert train.soft.shape == (7, 8)
    np.testing.assert_allclose(train.soft.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(train.labels, train.soft.argmax(1))
    happy, surprise = EMOTIONS8.index("happy"), EMOTIONS8.index("surprise")
    np.testing.assert_allclose(train.soft[1, [happy, surprise]], [0.6, 0.4])
    np.testing.assert_allclose(train.soft[3], np.eye(8)[EMOTIONS8.index("angry")])  # 1-votes removed
    seven = ferplus.read(ferplus_root, mode="soft", num_classes=7)["train"]
    np.testing.assert_allclose(seven.soft[seven.ids.index("row4")], np.eye(7)[EMOTIONS7.index("neutral")])


def test_ferplus_fer2013_option_and_errors(ferplus_root, tmp_path):
    elsewhere = tmp_path / "a" / "votes" / "fer2013new.csv"  # no ../fer2013 here
    write_ferplus(elsewhere)
    with pytest.raises(DataError, match="pass fer2013=PATH"):
        ferplus.read(elsewhere)
    assert len(ferplus.read(elsewhere, fer2013=ferplus_root.parent / "fer2013" / "fer2013.csv")["val"]) == 3
    short = write_ferplus(tmp_path / "short" / "fer2013new.csv", FERPLUS_ROWS[:-1])
    with pytest.raises(DataError, match="17 rows but FER2013 .* has 18"):
        ferplus.read(short, fer2013=ferplus_root.parent / "fer2013")
    swapped = FERPLUS_ROWS[:9] + [FERPLUS_ROWS[10], FERPLUS_ROWS[9]] + FERPLUS_ROWS[11:]
    swapped_csv = write_ferplus(tmp_path / "sw" / "fer2013new.csv", swapped)
    with pytest.raises(DataError, match="Usage differs .* first at data row 10; the rows are not in the same order"):
        ferplus.read(swapped_csv, fer2013=ferplus_root.parent / "fer2013")
    no_nf = write_ferplus(tmp_path / "h" / "fer2013new.csv", header=FERPLUS_HEADER.replace(",NF", ""))
    with pytest.raises(DataError, match=r"missing column\(s\) \['NF'\]"):
        ferplus.read(no_nf)
    with pytest.raises(ConfigError, match="mode must be"):
        ferplus.read(ferplus_root, mode="probability")


def write_microsoft(folder: Path, rows: list[tuple[str, str, list[int]]], pattern: str) -> None:
    for usage, split in (("Training", "FER2013Train"), ("PublicTest", "FER2013Valid"), ("PrivateTest", "FER2013Test")):
        path = folder / pattern.format(s=split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(f'{n},"(0, 0, 48, 48)",' + ",".join(map(str, v)) + "\n" for u, n, v in rows if u == usage and n)
        )


def test_ferplus_microsoft_votes_match_names_to_rows(ferplus_root):
    revised = [(u, n, v) for u, n, v in FERPLUS_ROWS]
    revised[2] = ("Training", "fer0000002.png", [0, 0, 10, 0, 0, 0, 0, 0, 0, 0])  # tie resolved: surprise
    write_microsoft(ferplus_root, revised, "microsoft_labels/{s}.label.csv")
    train = ferplus.read(ferplus_root, votes="microsoft")["train"]
    assert train.ids == ["row0", "row1", "row2", "row3", "row4", "row9"]
    assert EMOTIONS8[train.labels[2]] == "surprise"
    with pytest.raises(DataError, match="votes='microsoft' needs"):
        ferplus.read(_bare_copy(ferplus_root), votes="microsoft", fer2013=ferplus_root.parent / "fer2013")


def _bare_copy(ferplus_root: Path) -> Path:
    dst = ferplus_root.parent / "bare" / "fer2013new.csv"
    dst.parent.mkdir()
    dst.write_bytes((ferplus_root / "fer2013new.csv").read_bytes())
    return dst


def test_ferplus_generated_image_layout(tmp_path):
    write_microsoft(tmp_path, FERPLUS_ROWS, "{s}/label.csv")
    for u, n, _ in FERPLUS_ROWS:
        if n:
            folder_name = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}[u]
            imwrite(tmp_path / folder_name / n, np.full((48, 48), 128, np.uint8))
    splits = ferplus.read(tmp_path)
    assert splits["val"].ids == ["fer0000010.png", "fer0000011.png", "fer0000012.png"]
    assert splits["val"].paths[0] == str(tmp_path / "FER2013Valid" / "fer0000010.png")
    assert materialize(splits["val"], 48, gray=True).shape == (3, 48, 48)
    (tmp_path / "FER2013Test" / "fer0000015.png").unlink()
    with pytest.raises(DataError, match=r"1 of 3 images are missing; first missing: .*fer0000015\.png"):
        ferplus.read(tmp_path)


@pytest.fixture
def real_ferplus() -> Path:
    if not FERPLUS_CSV.is_file():
        pytest.skip(f"real FER+ labels not available at {FERPLUS_CSV}")
    return FERPLUS_CSV


def test_real_ferplus_vote_counts(real_ferplus):
    usage, names, votes = ferplus.parse_votes(real_ferplus)
    assert len(names) == 35887 and sum(not n for n in names) == 173
    labels = ferplus.majority_labels(votes, 8)
    kept = [int(((usage == c) & (labels >= 0) & np.array([bool(n) for n in names])).sum()) for c in range(3)]
    assert kept == [25060, 3199, 3153]  # fer2013new.csv as released
    keep, revised = ferplus._microsoft_votes(real_ferplus.parent, usage, names)
    labels = ferplus.majority_labels(revised, 8)
    # the per-split files give the counts the FER+ literature reports
    assert [int(((usage == c) & keep & (labels >= 0)).sum()) for c in range(3)] == [25045, 3191, 3137]


def test_real_ferplus_joined_to_real_fer2013(real_ferplus, real_fer2013):
    splits = ferplus.read(real_ferplus.parent, fer2013=real_fer2013)
    assert {k: len(v) for k, v in splits.items()} == {"train": 25060, "val": 3199, "test": 3153}
    assert splits["train"].counts().tolist() == [2100, 119, 532, 7287, 3014, 3149, 8740, 119]
    assert splits["train"].images.shape[1:] == (48, 48)


# --- RAF-DB ----------------------------------------------------------------------------------

RAF_LINES = [
    "train_00001.jpg 5",
    "train_00002.jpg 1",
    "train_00003.jpg 4",
    "train_00004.jpg 7",
    "test_0001.jpg 6",
    "test_0002.jpg 2",
    "test_0003.jpg 3",
]


@pytest.fixture
def rafdb_root(tmp_path) -> Path:
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(RAF_LINES))  # no final newline
    for line in RAF_LINES:
        name = line.split()[0]
        imwrite(tmp_path / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), photo(100, 100))
        imwrite(tmp_path / "Image" / "original" / name, photo(120, 90))
    return tmp_path


def test_rafdb_splits_and_labels(rafdb_root):
    splits = rafdb.read(rafdb_root)
    assert [EMOTIONS7[i] for i in splits["train"].labels] == ["sad", "surprise", "happy", "neutral"]
    assert [EMOTIONS7[i] for i in splits["test"].labels] == ["angry", "fear", "disgust"]
    assert splits["train"].ids[0] == "train_00001.jpg"
    assert splits["train"].paths[0] == str(rafdb_root / "Image" / "aligned" / "train_00001_aligned.jpg")
    assert materialize(splits["test"], 64).shape == (3, 64, 64, 3)
    original = rafdb.read(rafdb_root, aligned=False)["test"]
    assert original.paths[2] == str(rafdb_root / "Image" / "original" / "test_0003.jpg")


def test_rafdb_missing_images_and_bad_lines(rafdb_root):
    (rafdb_root / "Image" / "aligned" / "test_0002_aligned.jpg").unlink()
    with pytest.raises(DataError, match=r"1 of 7 images are missing; first missing: .*test_0002_aligned\.jpg"):
        rafdb.read(rafdb_root)
    label_file = rafdb_root / "EmoLabel" / "list_patition_label.txt"
    label_file.write_text("train_00001.jpg 5\ntrain_00002.jpg 8\n")
    with pytest.raises(DataError, match="line 2: label 8 is not one of 1-7"):
        rafdb.read(rafdb_root)
    label_file.write_text("val_00001.jpg 5\n")
    with pytest.raises(DataError, match="line 1: name 'val_00001.jpg' starts with neither"):
        rafdb.read(rafdb_root)
    with pytest.raises(DataError, match="no EmoLabel/list_patition_label.txt"):
        rafdb.read(rafdb_root / "Image")


@pytest.fixture
def real_rafdb() -> Path:
    if not RAFDB_LIST.is_file():
        pytest.skip(f"real RAF-DB label list not available at {RAFDB_LIST}")
    return RAFDB_LIST


def test_real_rafdb_label_list(real_rafdb):
    parsed = rafdb.parse_labels(real_rafdb)
    counts = {k: np.bincount([c for _, c in v], minlength=7).tolist() for k, v in parsed.items()}
    # angry, disgust, fear, happy, sad, surprise, neutral
    assert counts == {"train": [705, 717, 281, 4772, 1982, 1290, 2524], "test": [162, 160, 74, 1185, 478, 329, 680]}
    assert sum(counts["train"]) == 12271 and sum(counts["test"]) == 3068
    with pytest.raises(DataError, match=r"15,339 of 15,339 images are missing; first missing: .*train_00001_aligned"):
        rafdb.read(real_rafdb)


# --- AffectNet -------------------------------------------------------------------------------

AFFECT_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
# (file, x, y, w, h, expression)
AFFECT_TRAIN = [
    ("689/a.jpg", 10, 20, 30, 40, 1),
    ("689/b.jpg", 0, 0, 50, 50, 7),
    ("690/c.jpg", 5, 5, 20, 20, 6),
    ("690/d.jpg", 0, 0, 10, 10, 8),
    ("690/e.jpg", 0, 0, 10, 10, 10),
    ("691/f.png", 12, 8, 24, 24, 0),
]
AFFECT_VAL = [("700/g.jpg", 4, 6, 16, 16, 3), ("700/h.jpg", 0, 0, 8, 8, 9), ("700/i.jpg", 2, 2, 30, 30, 5)]


def affect_rows(rows, header: bool) -> str:
    lines = [AFFECT_HEADER] if header else []
    lines += [f'{f},{x},{y},{w},{h},"1.5;2.5;3.5;4.5",{e},0.25,-0.5' for f, x, y, w, h, e in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture
def affectnet_root(tmp_path) -> Path:
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    (lists / "training.csv").write_text(affect_rows(AFFECT_TRAIN, header=True))
    (lists / "validation.csv").write_text(affect_rows(AFFECT_VAL, header=False))  # as some copies ship
    for f, x, y, w, h, _ in AFFECT_TRAIN + AFFECT_VAL:
        imwrite(tmp_path / "Manually_Annotated_Images" / f, photo(80, 70, (x, y, x + w, y + h)))
    return tmp_path


def test_affectnet_2017_lists_crop_and_header_detection(affectnet_root):
    splits = affectnet.read(affectnet_root)
    train, test = splits["train"], splits["test"]
    assert sorted(splits) == ["test", "train"]
    assert train.ids == ["689/a.jpg", "690/c.jpg", "691/f.png"]  # contempt (7), none (8), no-face (10) dropped
    assert [EMOTIONS7[i] for i in train.labels] == ["happy", "angry", "neutral"]
    assert train.boxes.tolist() == [[10, 20, 40, 60], [5, 5, 25, 25], [12, 8, 36, 32]]
    assert test.ids == ["700/g.jpg", "700/i.jpg"] and [EMOTIONS7[i] for i in test.labels] == ["surprise", "disgust"]
    crops = materialize(train, 32)
    assert crops.reshape(len(crops), -1).mean(1).min() > 240  # every crop is the white face box
    eight = affectnet.read(affectnet_root, num_classes=8)["train"]
    assert eight.label_names == EMOTIONS8 and EMOTIONS8[eight.labels[1]] == "contempt"


def test_affectnet_list_errors(affectnet_root):
    lists = affectnet_root / "Manually_Annotated_file_lists"
    (lists / "training.csv").write_text(AFFECT_HEADER.replace(",expression", "") + "\n")
    with pytest.raises(DataError, match=r"training\.csv: missing column\(s\) \['expression'\]"):
        affectnet.read(affectnet_root)
    (lists / "training.csv").write_text(affect_rows(AFFECT_TRAIN, header=True) + "689/z.jpg,1,2\n")
    with pytest.raises(DataError, match=r"training\.csv: data row 7: malformed"):
        affectnet.read(affectnet_root)
    (lists / "training.csv").write_text(affect_rows(AFFECT_TRAIN + [("689/z.jpg", 0, 0, 5, 5, 2)], header=True))
    with pytest.raises(DataError, match=r"1 of 4 images are missing; first missing: .*689/z\.jpg"):
        affectnet.read(affectnet_root)
    with pytest.raises(DataError, match="neither Manually_Annotated_file_lists/"):
        affectnet.read(lists)


def test_affectnet_cropped_face_layout(tmp_path):
    for split, ids, exps in (
        ("train_set", ["0", "2", "10", "11"], [np.array("3"), np.array(7), np.array("1"), 9]),
        ("val_set", ["5"], [np.array(4)]),
    ):
        for i, e in zip(ids, exps):
            imwrite(tmp_path / split / "images" / f"{i}.jpg", photo(224, 224))
            (tmp_path / split / "annotations").mkdir(exist_ok=True)
            np.save(tmp_path / split / "annotations" / f"{i}_exp.npy", np.asarray(e))
    splits = affectnet.read(tmp_path)
    assert splits["train"].ids == ["0", "10"] and splits["train"].boxes is None
    assert [EMOTIONS7[i] for i in splits["train"].labels] == ["surprise", "happy"]
    assert [EMOTIONS7[i] for i in splits["test"].labels] == ["fear"]
    assert affectnet.read(tmp_path, num_classes=8)["train"].ids == ["0", "2", "10"]
    (tmp_path / "val_set" / "annotations" / "5_exp.npy").unlink()
    with pytest.raises(DataError, match=r"1 of 1 annotations are missing; first missing: .*5_exp\.npy"):
        affectnet.read(tmp_path)


# --- ExpW ------------------------------------------------------------------------------------

# image_name face_id top left right bottom confidence label
EXPW_LINES = [
    "afraid_african_214.jpg 0 10 20 50 40 62.5 2",
    "afraid_african_214.jpg 1 40 5 25 70 30.1 6",
    "angry_asian_1.jpg 0 0 0 30 30 80.0 0",
    "happy_man_9.jpg 0 12 14 44 46 55.0 3",
]


@pytest.fixture
def expw_root(tmp_path) -> Path:
    (tmp_path / "label").mkdir()
    (tmp_path / "label" / "label.lst").write_text("\n".join(EXPW_LINES) + "\n")
    img = photo(90, 80, (20, 10, 50, 40))
    img[40:70, 5:25] = 255  # the second face
    imwrite(tmp_path / "image" / "origin" / "afraid_african_214.jpg", img)
    imwrite(tmp_path / "image" / "origin" / "angry_asian_1.jpg", photo(40, 40, (0, 0, 30, 30)))
    imwrite(tmp_path / "image" / "origin" / "happy_man_9.jpg", photo(60, 60, (14, 12, 44, 46)))
    return tmp_path


def test_expw_faces_and_boxes(expw_root):
    splits = expw.read(expw_root)
    assert list(splits) == ["all"]
    faces = splits["all"]
    assert faces.ids == [
        "afraid_african_214.jpg#0",
        "afraid_african_214.jpg#1",
        "angry_asian_1.jpg#0",
        "happy_man_9.jpg#0",
    ]
    assert [EMOTIONS7[i] for i in faces.labels] == ["fear", "neutral", "angry", "happy"]
    assert faces.boxes.tolist() == [[20, 10, 50, 40], [5, 40, 25, 70], [0, 0, 30, 30], [14, 12, 44, 46]]
    crops = materialize(faces, 24)
    assert crops.reshape(len(crops), -1).mean(1).min() > 240  # each crop is its white face


def test_expw_errors_and_truncated_image(expw_root):
    label = expw_root / "label" / "label.lst"
    label.write_text("a.jpg 0 10 20 50 40 62.5 7\n")
    with pytest.raises(DataError, match="line 1: label 7 is not one of 0-6"):
        expw.read(expw_root)
    label.write_text("a.jpg 0 10 20 50\n")
    with pytest.raises(DataError, match="line 1: expected 'image face_id top left right bottom"):
        expw.read(expw_root)
    label.write_text("\n".join(EXPW_LINES))
    photo_path = expw_root / "image" / "origin" / "happy_man_9.jpg"
    photo_path.write_bytes(photo_path.read_bytes()[:200])
    faces = expw.read(expw_root)["all"]
    with pytest.raises(DataError, match=r"happy_man_9\.jpg: not a readable image"):
        materialize(faces, 24)
    photo_path.unlink()
    with pytest.raises(DataError, match=r"1 of 3 images are missing; first missing: .*happy_man_9\.jpg"):
        expw.read(expw_root)


# --- a plain folder of class folders ----------------------------------------------------------


def make_class_folders(
    root: Path, names=("Happy", "anger", "sad", "surprised", "fearful", "disgust", "neutral"), per_class: int = 5
) -> None:
    for n in names:
        for i in range(per_class):
            imwrite(root / n / f"{i}.png", photo(30, 30))
        (root / n / "notes.txt").write_text("ignored")


def test_folder_all_with_synonyms(tmp_path):
    make_class_folders(tmp_path)
    splits = folder.read(tmp_path)
    assert list(splits) == ["all"]
    data = splits["all"]
    assert data.label_names == EMOTIONS7 and data.counts().tolist() == [5] * 7
    assert data.ids[0] == "Happy/0.png" and EMOTIONS7[data.labels[0]] == "happy"
    assert materialize(data.subset([0, 1]), 16).shape == (2, 16, 16, 3)
    carved = build_splits(splits, DataConfig(name="folder", root=str(tmp_path), val_fraction=0.2))
    assert {k: len(v) for k, v in carved.items()} == {"train": 21, "val": 7, "test": 7}


def test_own_faces_are_never_copied_into_the_cache(tmp_path, monkeypatch):
    """A team's folder of faces is decoded in memory only; a published dataset's decoded pixels
    are cached, and an image replaced under the same name is decoded again, never served stale."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESEMOTENET_CACHE", str(cache))
    make_class_folders(tmp_path / "faces", per_class=2)
    own = folder.read(tmp_path / "faces")["all"]
    assert materialize(own, 16).shape == (14, 16, 16, 3)
    assert not list(cache.rglob("*.npy"))

    published = own.subset(np.arange(2))
    published.cacheable = True
    first = materialize(published, 16)
    assert first.max() == 0 and len(list(cache.glob("images-*.npy"))) == 1
    path = Path(published.paths[0])
    imwrite(path, np.full((30, 30, 3), 255, np.uint8))
    import os

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a clearly later modification time
    again = materialize(published, 16)
    assert again[0].min() == 255 and again[1].max() == 0
    assert not list(cache.glob("*.tmp"))


def test_a_cache_that_cannot_be_written_costs_the_cache_not_the_run(tmp_path, monkeypatch):
    from resemotenet.utils import io

    def full_disk(path, write, force=True):
        raise io.OutputError(f"{path}: could not write (no space left on device); nothing was changed")

    monkeypatch.setenv("RESEMOTENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(io, "atomic_write", full_disk)
    make_class_folders(tmp_path / "faces", per_class=1)
    published = folder.read(tmp_path / "faces")["all"]
    published.cacheable = True
    assert materialize(published, 16).shape == (7, 16, 16, 3)
    assert not list((tmp_path / "cache").glob("images-*"))


def test_folder_contempt_and_num_classes(tmp_path):
    make_class_folders(tmp_path, per_class=1)
    imwrite(tmp_path / "Contempt" / "x.png", photo(30, 30))
    assert folder.read(tmp_path)["all"].label_names == EMOTIONS8
    seven = folder.read(tmp_path, num_classes=7)["all"]
    assert seven.label_names == EMOTIONS7 and len(seven) == 7


def test_folder_train_val_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        make_class_folders(tmp_path / split, names=("happy", "sad"), per_class=n)
    splits = folder.read(tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6, "val": 2, "test": 4}
    assert splits["test"].ids[0] == "test/happy/0.png"


def test_folder_errors(tmp_path):
    make_class_folders(tmp_path, names=("happy", "bored"), per_class=1)
    with pytest.raises(DataError, match=r"bored: unknown emotion name 'bored'; valid names: angry, contempt, disgust"):
        folder.read(tmp_path)
    (tmp_path / "bored" / "0.png").unlink()
    (tmp_path / "bored" / "notes.txt").unlink()
    (tmp_path / "bored").rename(tmp_path / "sad")
    with pytest.raises(DataError, match=r"sad: holds no images"):
        folder.read(tmp_path)
    with pytest.raises(DataError, match="no class subfolders"):
        folder.read(tmp_path / "happy")
    with pytest.raises(DataError, match="folder not found"):
        folder.read(tmp_path / "missing")
    make_class_folders(tmp_path / "split" / "test", names=("happy",), per_class=1)
    with pytest.raises(DataError, match=r"split folders \['test'\] but no train/"):
        folder.read(tmp_path / "split")
    make_class_folders(tmp_path / "split" / "train", names=("happy",), per_class=1)
    make_class_folders(tmp_path / "split", names=("sad",), per_class=1)
    with pytest.raises(DataError, match=r"also \['sad'\]; put class folders inside"):
        folder.read(tmp_path / "split")


def test_folder_empty_split_after_dropping_contempt(tmp_path):
    make_class_folders(tmp_path / "train", names=("happy",), per_class=1)
    make_class_folders(tmp_path / "test", names=("contempt",), per_class=1)
    with pytest.raises(DataError, match="the test split holds no images of classes angry"):
        folder.read(tmp_path, num_classes=7)


# --- groups of a folder (groups.csv, or the group column of labels.csv) ------------------------

XDOMAIN = SHARED / "xdomain"


def write_groups(root: Path, rows: list[str], name: str = "groups.csv", header: str = "file,group") -> None:
    (root / name).write_text("\n".join([header, *rows]) + "\n")


def test_folder_without_a_groups_file_makes_each_image_its_own_group(tmp_path):
    make_class_folders(tmp_path, names=("happy", "sad"), per_class=2)
    data = folder.read(tmp_path)["all"]
    assert data.groups.tolist() == data.ids == ["happy/0.png", "happy/1.png", "sad/0.png", "sad/1.png"]


def test_folder_groups_csv_and_a_grouped_carve(tmp_path):
    make_class_folders(tmp_path, names=("happy", "sad", "angry"), per_class=6)
    rows = [f"{c}/{i}.png,person{i}" for c in ("happy", "sad", "angry") for i in range(6)]
    write_groups(tmp_path, rows)
    data = folder.read(tmp_path)["all"]
    assert data.groups[data.ids.index("sad/4.png")] == "person4"
    carved = build_splits({"all": data}, DataConfig(name="folder", root=str(tmp_path), val_fraction=0.2))
    people = {k: set(v.groups) for k, v in carved.items()}
    assert people["train"].isdisjoint(people["val"] | people["test"]) and people["val"].isdisjoint(people["test"])
    assert sum(len(v) for v in carved.values()) == 18


def test_folder_groups_csv_with_split_folders(tmp_path):
    make_class_folders(tmp_path / "train", names=("happy",), per_class=2)
    make_class_folders(tmp_path / "test", names=("happy",), per_class=1)
    write_groups(tmp_path, ["train/happy/0.png,ann", "train/happy/1.png,bo", "test/happy/0.png,cy"])
    splits = folder.read(tmp_path)
    assert splits["train"].groups.tolist() == ["ann", "bo"] and splits["test"].groups.tolist() == ["cy"]


def test_folder_labels_csv_group_column(tmp_path):
    make_class_folders(tmp_path, names=("happy", "sad"), per_class=2)
    rows = ["happy/0.png,happy,s1,x", "happy/1.png,happy,s2,x", "sad/0.png,sad,s1,y", "sad/1.png,unhappy,s2,y"]
    write_groups(tmp_path, rows, "labels.csv", "file,label,subject,session")
    assert folder.read(tmp_path)["all"].groups.tolist() == ["s1", "s2", "s1", "s2"]
    assert folder.read(tmp_path, group_column="session")["all"].groups.tolist() == ["x", "x", "y", "y"]
    with pytest.raises(DataError, match=r"labels\.csv: no 'camera' column \(header: file, label, subject, session\)"):
        folder.read(tmp_path, group_column="camera")
    write_groups(tmp_path, [*rows[:3], "sad/1.png,happy,s2,y"], "labels.csv", "file,label,subject,session")
    with pytest.raises(DataError, match=r"labels\.csv: 1 labels disagree with their class folder: sad/1\.png"):
        folder.read(tmp_path)
    write_groups(tmp_path, ["happy/0.png,happy", "sad/0.png,sad"], "labels.csv", "file,label")
    assert folder.read(tmp_path)["all"].groups.tolist() == ["happy/0.png", "happy/1.png", "sad/0.png", "sad/1.png"]


def test_folder_groups_csv_bad_cases(tmp_path):
    make_class_folders(tmp_path, names=("happy", "sad"), per_class=3)
    every = [f"{c}/{i}.png,p{i}" for c in ("happy", "sad") for i in range(3)]
    write_groups(tmp_path, [*every, "happy/7.png,p7", "sad/9.png,p9", "sad/notes.txt,p0"])
    with pytest.raises(
        DataError, match=r"groups\.csv: 3 of 9 listed files are not images of this folder .*: happy/7\.png"
    ):
        folder.read(tmp_path)
    write_groups(tmp_path, every[:2])
    with pytest.raises(
        DataError, match=r"groups\.csv: 4 of 6 images have no group: happy/2\.png, sad/0\.png, sad/1\.png, \.\.\."
    ):
        folder.read(tmp_path)
    write_groups(tmp_path, [*every, "happy/0.png,p5"])
    with pytest.raises(DataError, match=r"groups\.csv: line 8: happy/0\.png is listed twice with different groups"):
        folder.read(tmp_path)
    write_groups(tmp_path, [*every[:5], "sad/2.png,"])
    with pytest.raises(DataError, match=r"groups\.csv: line 7: empty file or group"):
        folder.read(tmp_path)
    write_groups(tmp_path, every, header="image,person")
    with pytest.raises(DataError, match=r"groups\.csv: no 'file' column \(header: image, person\)"):
        folder.read(tmp_path)


@pytest.mark.parametrize(
    ("name", "n", "n_groups", "column"),
    [("sfew-train", 859, 577, "clip"), ("jaffe-partial", 68, 10, "subject"), ("yale", 59, 15, "subject")],
)
def test_real_xdomain_groups(name, n, n_groups, column):
    root = XDOMAIN / name
    if not (root / "labels.csv").is_file():
        pytest.skip(f"xdomain set not available at {root}")
    data = folder.read(root)["all"]
    assert len(data) == n and len(set(data.groups)) == n_groups
    first = (root / "labels.csv").read_text().splitlines()[1].split(",")
    assert data.groups[data.ids.index(first[0])] == first[2]
    assert (root / "labels.csv").read_text().splitlines()[0].split(",")[2] == column
