"""FER2013: the Kaggle csv (plain, gzip, tar archive), the popular image-folder layout, the real file."""

from __future__ import annotations

import gzip
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import face_like

from resemotenet.data.readers import fer2013, fer2013_folder, get_reader
from resemotenet.labels import EMOTIONS7
from resemotenet.utils.errors import DataError

# README table: per Usage, counts of angry, disgust, fear, happy, sad, surprise, neutral.
REAL_COUNTS = {
    "train": [3995, 436, 4098, 7215, 4830, 3170, 4965],
    "val": [467, 56, 496, 895, 653, 415, 607],
    "test": [491, 55, 528, 879, 594, 416, 626],
}


def test_csv_splits_follow_usage(fer2013_csv):
    splits = get_reader("fer2013")(fer2013_csv)
    assert {k: len(v) for k, v in splits.items()} == {"train": 140, "val": 35, "test": 35}
    train = splits["train"]
    assert train.images.shape == (140, 48, 48) and train.images.dtype == np.uint8
    assert train.label_names == EMOTIONS7
    assert train.labels[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]  # the fixture writes i % 7
    assert splits["val"].ids[0] == "row140" and splits["test"].ids[-1] == "row209"
    assert train.source == str(fer2013_csv)


def test_pixels_are_row_major(tmp_path):
    pix = np.arange(48 * 48) % 256
    (tmp_path / "f.csv").write_text("emotion,pixels,Usage\n3," + " ".join(map(str, pix)) + ",Training\n")
    img = fer2013.read(tmp_path / "f.csv", use_cache=False)["train"].images[0]
    assert img[0, :3].tolist() == [0, 1, 2] and img[1, 0] == 48 and img[47, 47] == (48 * 48 - 1) % 256


def test_gzip_and_tar_archive_match_plain_csv(fer2013_csv, tmp_path):
    plain = fer2013.parse_csv(fer2013_csv)
    gz = tmp_path / "fer2013.csv.gz"
    gz.write_bytes(gzip.compress(fer2013_csv.read_bytes()))
    archive_dir = tmp_path / "kaggle"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "fer2013.tar.gz", "w:gz") as tar:  # the challenge archive
        tar.add(fer2013_csv, arcname="fer2013/fer2013.csv")
        tar.add(fer2013_csv, arcname="fer2013/README")
    for source in (gz, archive_dir / "fer2013.tar.gz", archive_dir):
        got = fer2013.parse_csv(fer2013.find_csv(source))
        for key in ("pixels", "emotion", "usage"):
            np.testing.assert_array_equal(got[key], plain[key])
    assert len(fer2013.read(archive_dir)["test"]) == 35


def test_missing_column(tmp_path):
    (tmp_path / "f.csv").write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DataError, match=r"f\.csv: missing column\(s\) \['pixels'\]"):
        fer2013.read(tmp_path / "f.csv")


def test_wrong_pixel_length_names_the_line(tmp_path):
    good = " ".join(["7"] * 2304)
    short = " ".join(["7"] * 2303)
    (tmp_path / "f.csv").write_text(f"emotion,pixels,Usage\n0,{good},Training\n1,{short},PublicTest\n")
    with pytest.raises(DataError, match=r"f\.csv: line 3: pixels has 2303 values, expected 2304"):
        fer2013.read(tmp_path / "f.csv")


def test_bad_usage_and_out_of_range_pixels(tmp_path):
    good = " ".join(["7"] * 2304)
    (tmp_path / "a.csv").write_text(f"emotion,pixels,Usage\n0,{good},Testing\n")
    with pytest.raises(DataError, match="line 2: unknown Usage 'Testing'"):
        fer2013.read(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(f"emotion,pixels,Usage\n0,{good[:-1]}300,Training\n")
    with pytest.raises(DataError, match="outside 0..255"):
        fer2013.read(tmp_path / "b.csv")


@pytest.mark.parametrize("kind", ["gz", "tar.gz"])
def test_truncated_archive(fer2013_csv, tmp_path, kind):
    full = tmp_path / f"full.{kind}"
    if kind == "gz":
        full.write_bytes(gzip.compress(fer2013_csv.read_bytes()))
    else:
        with tarfile.open(full, "w:gz") as tar:
            tar.add(fer2013_csv, arcname="fer2013/fer2013.csv")
    cut = tmp_path / f"fer2013.{kind}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"fer2013\.{kind}: .*(truncated|corrupt)"):
        fer2013.read(cut)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        fer2013.read(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no fer2013.csv, fer2013.csv.gz or fer2013.tar.gz"):
        fer2013.read(tmp_path)


def test_second_load_is_served_from_the_cache(fer2013_csv, monkeypatch):
    first = fer2013.read(fer2013_csv)

    def no_parse(path):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(fer2013, "parse_csv", no_parse)
    second = fer2013.read(fer2013_csv)
    np.testing.assert_array_equal(second["train"].images, first["train"].images)
    with pytest.raises(AssertionError, match="parsed again"):
        fer2013.read(fer2013_csv, use_cache=False)


def test_real_fer2013_counts_and_cache(real_fer2013, monkeypatch):
    splits = fer2013.read(real_fer2013)  # parses once (about 10 s) or reads this session's cache
    assert {k: len(v) for k, v in splits.items()} == {"train": 28709, "val": 3589, "test": 3589}
    for name, counts in REAL_COUNTS.items():
        assert splits[name].counts().tolist() == counts, name
    monkeypatch.setattr(fer2013, "parse_csv", lambda p: pytest.fail("real csv parsed twice"))
    start = time.perf_counter()
    again = fer2013.read(real_fer2013)
    assert time.perf_counter() - start < 5
    np.testing.assert_array_equal(again["test"].images[:50], splits["test"].images[:50])


# --- the image-folder layout -----------------------------------------------------------------

FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def make_folder_layout(root: Path, per_class: int = 2, test_prefixes: bool = True) -> dict[str, np.ndarray]:
    """train/<class>/Training_*.png and test/<class>/{PublicTest,PrivateTest}_*.png (lossless)."""
    rng = np.random.default_rng(1)
    written = {}
    for c, folder in enumerate(FOLDERS):
        for i in range(per_class):
            for split, prefix in (("train", "Training"), ("test", "PublicTest"), ("test", "PrivateTest")):
                img = face_like(rng, c)
                name = f"{prefix}_{c}{i}.png" if test_prefixes or split == "train" else f"{prefix[:4]}{c}{i}.png"
                path = root / split / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(path), img)
                written[path.relative_to(root).as_posix()] = img
    return written


def test_folder_layout_splits_by_prefix(tmp_path):
    written = make_folder_layout(tmp_path)
    splits = fer2013.read(tmp_path)  # a folder with train/ goes to the folder reader
    assert {k: len(v) for k, v in splits.items()} == {"train": 14, "val": 14, "test": 14}
    assert splits["val"].counts().tolist() == [2] * 7
    assert all(i.split("/")[-1].startswith("PrivateTest_") for i in splits["test"].ids)
    val = splits["val"]
    assert val.images.shape == (14, 48, 48) and val.images.dtype == np.uint8
    for img, sid, label in zip(val.images, val.ids, val.labels):
        np.testing.assert_array_equal(img, written[sid])
        assert sid.split("/")[1] == EMOTIONS7[label]


def test_folder_layout_without_prefixes_is_all_test(tmp_path):
    make_folder_layout(tmp_path, per_class=1, test_prefixes=False)
    splits = fer2013_folder.read(tmp_path)
    assert sorted(splits) == ["test", "train"] and len(splits["test"]) == 14


def test_folder_layout_resizes_and_caches(tmp_path, monkeypatch):
    make_folder_layout(tmp_path, per_class=1)
    cv2.imwrite(str(tmp_path / "train" / "happy" / "big.jpg"), np.full((96, 80, 3), 200, np.uint8))
    first = fer2013_folder.read(tmp_path)["train"]
    assert first.images.shape == (8, 48, 48)
    assert abs(int(first.images[first.ids.index("train/happy/big.jpg")].mean()) - 200) <= 2
    monkeypatch.setattr(fer2013_folder, "_decode", lambda p: pytest.fail("decoded twice"))
    np.testing.assert_array_equal(fer2013_folder.read(tmp_path)["train"].images, first.images)


def test_folder_layout_errors(tmp_path):
    make_folder_layout(tmp_path, per_class=1)
    odd = tmp_path / "test" / "happy" / "Other_1.png"
    cv2.imwrite(str(odd), np.zeros((48, 48), np.uint8))
    with pytest.raises(DataError, match=r"Other_1\.png: test/ mixes PublicTest_/PrivateTest_"):
        fer2013_folder.read(tmp_path)
    odd.unlink()
    bad = tmp_path / "train" / "sad" / "Training_broken.png"
    bad.write_bytes((tmp_path / "train" / "sad" / "Training_40.png").read_bytes()[:60])
    with pytest.raises(DataError, match=r"Training_broken\.png: not a readable image"):
        fer2013_folder.read(tmp_path)
    bad.unlink()
    (tmp_path / "train" / "bored").mkdir()
    with pytest.raises(DataError, match=r"bored: unknown emotion name 'bored'; valid names: angry"):
        fer2013_folder.read(tmp_path)
    (tmp_path / "train" / "bored").rmdir()
    (tmp_path / "train" / "contempt").mkdir()
    cv2.imwrite(str(tmp_path / "train" / "contempt" / "x.png"), np.zeros((48, 48), np.uint8))
    with pytest.raises(DataError, match="FER2013 has no 'contempt' class"):
        fer2013_folder.read(tmp_path)
