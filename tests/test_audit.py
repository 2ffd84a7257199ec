"""Leakage audit: planted exact and near duplicates are found across splits, the LSH search
equals brute force, and the de-duplication file removes the leaked rows from training."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from resemotenet.analysis.audit import audit_splits, near_pairs, phash, popcount
from resemotenet.cli import main
from resemotenet.config import DataConfig
from resemotenet.data.dataset import Split, build_splits
from resemotenet.data.readers import get_reader


def _textures(n: int, seed: int = 0) -> np.ndarray:
    """Distinct smooth random 48x48 images (no two alike, unlike templated fixture faces)."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (n, 48, 48)).astype(np.uint8)
    return np.stack([cv2.GaussianBlur(im, (0, 0), 4.0) for im in raw])


def _planted(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A FER2013 csv (60/20/20) with: train row 3 copied into test, a noisy,
    slightly zoomed, brighter copy of train row 7 in val, and train row 11 copied onto train row 12."""
    imgs = _textures(100)
    usage = ["Training"] * 60 + ["PublicTest"] * 20 + ["PrivateTest"] * 20
    imgs[85] = imgs[3]  # exact, train -> test
    rng = np.random.default_rng(1)
    zoomed = cv2.resize(imgs[7][1:47, 1:47], (48, 48), interpolation=cv2.INTER_LINEAR)
    imgs[62] = np.clip(zoomed + rng.normal(0, 2, (48, 48)) + 5, 0, 255).astype(np.uint8)  # near, train -> val
    imgs[12] = imgs[11]  # exact, within train
    lines = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, im.ravel()))},{u}" for i, (im, u) in enumerate(zip(imgs, usage))
    ]
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, {"exact_cross": 3, "near": 7, "within": 11}


def _splits(path: Path, **kw) -> dict[str, Split]:
    cfg = DataConfig(name="fer2013", root=str(path), **kw)
    return build_splits(get_reader("fer2013")(path), cfg)


def test_finds_planted_exact_and_near_duplicates(tmp_path):
    path, _ = _planted(tmp_path)
    r = audit_splits(_splits(path))
    assert r["n"] == 100 and r["splits"] == {"train": 60, "val": 20, "test": 20}
    assert r["exact"]["redundant_rows"] == 2 and r["exact"]["groups"] == 2
    assert r["exact"]["pairs"]["train/test"] == 1 and r["exact"]["pairs"]["train/train"] == 1
    assert sum(r["exact"]["pairs"].values()) == 2
    assert r["exact"]["examples"] == [["train:row3", "test:row85"], ["train:row11", "train:row12"]]  # leaks first
    assert r["near"]["pairs_distinct_images"] == 1  # no false positives among distinct textures
    assert r["near"]["pairs"]["train/val"] == 1
    assert r["near"]["examples"][0]["ids"] == ["train:row7", "val:row62"]
    assert r["near"]["examples"][0]["corr"] >= 0.95
    assert r["leaks"]["train"] == {"val": 1, "test": 1}
    assert sorted(r["_exclude_ids"]) == ["row3", "row7"]  # within-train copies stay
    assert r["exact"]["label_conflicts"] == 2  # the copies were written with other labels


def test_lsh_search_equals_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 120, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 120, dtype=np.uint64)
    variants = []
    for k in range(10):  # copies with k flipped bits
        flips = np.zeros(40, np.uint64)
        for j in range(40):
            for b in rng.choice(64, k, replace=False):
                flips[j] |= np.uint64(1) << np.uint64(b)
        variants.append(base[:40] ^ flips)
    h = np.concatenate([base] + variants)
    dist = popcount((h[:, None] ^ h[None, :]).ravel()).reshape(len(h), len(h))
    for t in (0, 3, 6):
        i, j = np.nonzero(np.triu(dist <= t, 1))
        brute = set(zip(i.tolist(), j.tolist()))
        found = set(map(tuple, near_pairs(h, t).tolist()))
        assert found == brute and len(brute) >= 40


def test_phash_is_stable_under_noise_and_separates_images():
    imgs = _textures(20)
    noisy = np.clip(imgs + np.random.default_rng(0).normal(0, 3, imgs.shape), 0, 255).astype(np.uint8)
    thumbs = np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA) for im in np.concatenate([imgs, noisy])])
    h = phash(thumbs)
    same = popcount(h[:20] ^ h[20:])
    other = popcount(h[:19] ^ h[1:20])
    assert np.median(same) <= 4 and same.max() + 10 < other.min()  # about 32 bits apart


def test_cli_writes_exclusion_file_that_training_reads(tmp_path, capsys):
    path, _ = _planted(tmp_path)
    out = tmp_path / "audit"
    assert main(["audit", "--data", f"fer2013:{path}", "--output", str(out), "--examples", "2"]) == 0
    text = capsys.readouterr().out
    assert "2 redundant rows" in text and "2 training rows to exclude" in text
    dedup = json.loads((out / "dedup.json").read_text())
    assert sorted(dedup["exclude_train"]) == ["row3", "row7"]
    report = json.loads((out / "audit.json").read_text())
    assert report["exact"]["redundant_rows"] == 2 and "_exclude_ids" not in report
    strip = cv2.imread(str(out / "audit_exact.png"))
    assert strip is not None and strip.shape[1] > 2 * 96  # two tiles side by side
    train = _splits(path, exclude_file=str(out / "dedup.json"))["train"]
    assert len(train) == 58 and not {"row3", "row7"} & set(train.ids)


def test_cli_rejects_bad_threshold_and_missing_data(tmp_path, capsys):
    path, _ = _planted(tmp_path)
    assert main(["audit", "--data", f"fer2013:{path}", "--threshold", "40", "--output", str(tmp_path)]) == 2
    assert main(["audit", "--data", f"fer2013:{tmp_path / 'nope.csv'}", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "threshold" in err[0] and "nope.csv" in err[1] and len(err) == 2


def test_path_based_dataset_is_audited(tmp_path):
    """Readers that return file paths (a folder of images) are decoded once and audited."""
    imgs = _textures(15, seed=3)
    for i, im in enumerate(imgs):
        split, c = ("train" if i < 9 else "val" if i < 12 else "test"), ("happy" if i % 2 else "sad")
        (tmp_path / split / c).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / split / c / f"{i}.png"), im)
    cv2.imwrite(str(tmp_path / "test" / "sad" / "copy.png"), imgs[1])
    r = audit_splits(get_reader("folder")(tmp_path))
    assert r["splits"] == {"train": 9, "val": 3, "test": 4}
    assert r["exact"]["pairs"]["train/test"] == 1 and r["exact"]["redundant_rows"] == 1
    assert r["_exclude_ids"] == ["train/happy/1.png"]


def test_real_fer2013_redundant_rows(real_fer2013):
    """The data README states about 1,850 redundant rows; the audit counts them exactly."""
    r = audit_splits(_splits(real_fer2013))
    assert r["n"] == 35887
    assert r["exact"]["redundant_rows"] == 1851
    assert r["exact"]["pairs"]["train/test"] > 300 and r["exact"]["pairs"]["train/val"] > 300
    assert r["seconds"] < 60
