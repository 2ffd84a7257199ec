"""face-api's FaceExpressionNet read from its npm files (``models.faceapi``) and its soft labels
blended into training targets (``engine.soft_targets``), on a tiny network written here in the
package's layout: a tfjs weights manifest (uint8-quantised filters, float32 biases) + .bin shards
+ package.json. The network is checked against a numpy reimplementation of face-api's tfjs ops;
the real package, where RESEMOTENET_FACEAPI names its model folder, against face-api's own output."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY_RECIPE

from resemotenet.config import load_config
from resemotenet.data.dataset import Split
from resemotenet.engine import soft_targets as S
from resemotenet.engine.trainer import Trainer, load_data
from resemotenet.labels import EMOTIONS7, EMOTIONS8, FACEAPI_ORDER, FACEAPI_TO_CANON
from resemotenet.models.checkpoint import load_checkpoint
from resemotenet.models.faceapi import MANIFEST, MEAN_RGB, load_faceapi
from resemotenet.preprocess import FaceTransform
from resemotenet.utils.errors import CheckpointError, ConfigError

INSTALL = "npm pack @vladmandic/face-api@1.7.15"
FACEAPI_BY_CANON = sorted(FACEAPI_ORDER, key=FACEAPI_TO_CANON.get)  # face-api's names in EMOTIONS7's order


def write_package(root: Path, widths=(4, 4, 8, 8), version="1.7.15", seed=0) -> tuple[Path, dict]:
    """A face-api-shaped package at ``root``: package.json and model/ with the expression net's
    manifest, its weights split over two .bin shards. Returns (model folder, float32 weights)."""
    rng = np.random.default_rng(seed)
    model = root / "model"
    model.mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "@vladmandic/face-api", "version": version}))
    entries, blobs, weights = [], [], {}

    def add(name: str, shape: tuple[int, ...], quantize: bool) -> None:
        if quantize:  # uint8 with scale and min, as the real file stores its filters
            scale, low = 0.6 / 255, -0.3
            q = rng.integers(0, 256, shape).astype(np.uint8)
            weights[name] = (q.astype(np.float64) * scale + low).astype(np.float32)
            entries.append(
                {
                    "name": name,
                    "shape": list(shape),
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": scale, "min": low},
                }
            )
            blobs.append(q.tobytes())
        else:
            weights[name] = rng.normal(0, 0.1, shape).astype(np.float32)
            entries.append({"name": name, "shape": list(shape), "dtype": "float32"})
            blobs.append(weights[name].tobytes())

    cin = 3
    for i, c in enumerate(widths):
        if i == 0:
            add("dense0/conv0/filters", (3, 3, 3, c), True)
            add("dense0/conv0/bias", (c,), False)
        for j in range(0 if i else 1, 4):
            src = cin if j == 0 else c
            add(f"dense{i}/conv{j}/depthwise_filter", (3, 3, src, 1), True)
            add(f"dense{i}/conv{j}/pointwise_filter", (1, 1, src, c), True)
            add(f"dense{i}/conv{j}/bias", (c,), False)
        cin = c
    add("fc/weights", (cin, 7), True)
    add("fc/bias", (7,), False)
    blob = b"".join(blobs)
    half = len(blob) // 2
    (model / "face_expression_model.bin").write_bytes(blob[:half])
    (model / "face_expression_model-shard2").write_bytes(blob[half:])
    paths = ["face_expression_model.bin", "face_expression_model-shard2"]
    (model / MANIFEST).write_text(json.dumps([{"paths": paths, "weights": entries}]))
    return model, weights


# ---- face-api's tfjs ops in numpy (NHWC), the reference the torch network must match -------------
def _pad_same(x: np.ndarray, stride: int) -> np.ndarray:
    pads = []
    for n in x.shape[:2]:
        total = max((math.ceil(n / stride) - 1) * stride + 3 - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def _conv(x: np.ndarray, w: np.ndarray, stride: int, depthwise: bool = False) -> np.ndarray:
    xp = _pad_same(x, stride)
    oh, ow = math.ceil(x.shape[0] / stride), math.ceil(x.shape[1] / stride)
    out = 0.0
    for dy in range(3):
        for dx in range(3):
            patch = xp[dy : dy + stride * oh : stride, dx : dx + stride * ow : stride]
            out = out + (patch * w[dy, dx, :, 0] if depthwise else patch @ w[dy, dx])
    return out


def _separable(x, w, scope, stride):
    dw = _conv(x, w[f"{scope}/depthwise_filter"], stride, depthwise=True)
    return dw @ w[f"{scope}/pointwise_filter"][0, 0] + w[f"{scope}/bias"]


def numpy_faceapi(img: np.ndarray, w: dict) -> np.ndarray:
    """face-api's FaceExpressionNet on one 112x112x3 uint8 face: its probabilities, face-api's order."""
    x = (img.astype(np.float64) - np.array(MEAN_RGB)) / 255
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    for i in range(4):
        if i == 0:
            o1 = relu(_conv(x, w["dense0/conv0/filters"], 2) + w["dense0/conv0/bias"])
        else:
            o1 = relu(_separable(x, w, f"dense{i}/conv0", 2))
        o2 = _separable(o1, w, f"dense{i}/conv1", 1)
        o3 = _separable(relu(o1 + o2), w, f"dense{i}/conv2", 1)
        o4 = _separable(relu(o1 + o2 + o3), w, f"dense{i}/conv3", 1)
        x = relu(o1 + o2 + o3 + o4)
    logits = x.mean((0, 1)) @ w["fc/weights"] + w["fc/bias"]  # avgPool 7x7 over the 7x7 map
    e = np.exp(logits - logits.max())
    return e / e.sum()


@pytest.fixture
def package(tmp_path) -> tuple[Path, dict]:
    return write_package(tmp_path / "package")


def _native_probs(net, faces: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = FaceTransform(net.preprocess)(faces)
        return torch.softmax(net.forward_head(net.forward_features(x), native=True), 1).numpy()


def test_the_network_matches_face_apis_ops(package):
    folder, weights = package
    faces = np.random.default_rng(1).integers(0, 256, (3, 112, 112, 3)).astype(np.uint8)
    net = load_faceapi(folder)
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert net.source.startswith("@vladmandic/face-api@1.7.15 face_expression_model sha256:")
    want = np.stack([numpy_faceapi(f, weights) for f in faces])
    np.testing.assert_allclose(_native_probs(net, faces), want, atol=1e-5)
    # the package folder and the manifest itself name the same network
    for other in (folder.parent, folder / MANIFEST):
        np.testing.assert_allclose(_native_probs(load_faceapi(other), faces), want, atol=1e-5)


def test_logits_come_out_in_the_canonical_order(package):
    net = load_faceapi(package[0])
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        native = net.forward_head(net.forward_features(x), native=True)
        canon = net(x)
    assert net.labels == EMOTIONS7
    for name, j in FACEAPI_TO_CANON.items():
        torch.testing.assert_close(canon[:, j], native[:, FACEAPI_ORDER.index(name)])


def _break(folder: Path, how: str) -> Path:
    root = folder.parent
    if how == "missing":
        return root / "nothing-here"
    if how == "other version":
        (root / "package.json").write_text(json.dumps({"name": "@vladmandic/face-api", "version": "1.7.14"}))
    elif how == "other package":
        (root / "package.json").write_text(json.dumps({"name": "face-api.js", "version": "1.7.15"}))
    elif how == "no package.json":
        (root / "package.json").unlink()
    elif how == "bin missing":
        (folder / "face_expression_model-shard2").unlink()
    elif how == "bin truncated":
        shard = folder / "face_expression_model-shard2"
        shard.write_bytes(shard.read_bytes()[:-5])
    elif how == "other network":  # e.g. the landmark net's manifest under this name
        groups = json.loads((folder / MANIFEST).read_text())
        groups[0]["weights"][0]["name"] = "dense0/conv0/weights"
        (folder / MANIFEST).write_text(json.dumps(groups))
    elif how == "other shape":  # the same bytes, read as another shape
        groups = json.loads((folder / MANIFEST).read_text())
        fc = next(w for w in groups[0]["weights"] if w["name"] == "fc/weights")
        fc["shape"] = fc["shape"][::-1]
        (folder / MANIFEST).write_text(json.dumps(groups))
    return folder


@pytest.mark.parametrize(
    "how,why",
    [
        ("missing", "no face_expression_model-weights_manifest.json there"),
        ("other version", r"holds @vladmandic/face-api@1\.7\.14, not @vladmandic/face-api@1\.7\.15"),
        ("other package", "holds face-api.js@1.7.15"),
        ("no package.json", "no package.json"),
        ("bin missing", "face_expression_model-shard2: weights file missing"),
        ("bin truncated", "truncated"),
        ("other network", "not face-api's expression network .dense0/conv0/filters"),
        ("other shape", r"fc/weights: expected shape \[8, 7\], the manifest has \(7, 8\)"),
    ],
)
def test_a_wrong_package_is_refused_in_one_line_naming_what_to_install(package, how, why):
    with pytest.raises(CheckpointError, match=why) as err:
        load_faceapi(_break(package[0], how))
    assert INSTALL in str(err.value) and "\n" not in str(err.value)


# ---- soft targets ---------------------------------------------------------------------------
def test_temper_flattens_and_keeps_rows_normalised():
    p = np.array([[0.97, 0.01, 0.01, 0.01, 0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(S.temper(p, 1.0), p, atol=1e-6)
    t4 = S.temper(p, 4.0)
    np.testing.assert_allclose(t4.sum(1), 1.0, atol=1e-6)
    assert t4[0, 0] < 0.97 and t4[0, 1] > 0.01
    expected = np.clip(p, 1e-12, None) ** 0.25
    np.testing.assert_allclose(t4, expected / expected.sum(), atol=1e-6)


def test_blend_mixes_the_split_targets_with_the_teacher():
    teacher = np.full((2, 7), 1 / 7, np.float32)
    split = Split(name="train", labels=[3, 0], label_names=EMOTIONS7, images=np.zeros((2, 4, 4), np.uint8))
    out = S.blend(split, teacher, EMOTIONS7, 0.2)
    assert out[0, 3] == pytest.approx(0.8 + 0.2 / 7) and out[0, 0] == pytest.approx(0.2 / 7)
    votes = np.tile(np.eye(7, dtype=np.float32)[[5]], (2, 1))  # FER+ votes already blended in
    split.soft = votes
    assert S.blend(split, teacher, EMOTIONS7, 0.2)[1, 5] == pytest.approx(0.8 + 0.2 / 7)
    np.testing.assert_allclose(S.blend(split, teacher, EMOTIONS7, 0.0), votes)
    eight = Split(name="train", labels=[7], label_names=EMOTIONS8, images=np.zeros((1, 4, 4), np.uint8))
    out8 = S.blend(eight, teacher[:1], EMOTIONS7, 0.2)  # face-api has no contempt: it adds nothing there
    assert out8.shape == (1, 8) and out8[0, 7] == pytest.approx(0.8) and out8.sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"faceapi_weight must lie in \[0, 1\]"):
        S.blend(split, teacher, EMOTIONS7, 1.5)


def test_teacher_probabilities_are_computed_once_then_read_from_the_cache(package, monkeypatch):
    net = load_faceapi(package[0])
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)  # FER2013-like: 48 px grey
    split = Split(name="train", labels=[0, 1, 2, 3, 4], label_names=EMOTIONS7, images=faces)
    out = S.with_faceapi_targets(split, net, 0.2, 4.0, progress=False)
    probs = S.teacher_probs(split, net, progress=False)
    grey112 = np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_LINEAR) for f in faces])
    native = _native_probs(net, np.repeat(grey112[..., None], 3, -1))  # grey faces copied to RGB
    np.testing.assert_allclose(probs, native[:, [FACEAPI_ORDER.index(n) for n in FACEAPI_BY_CANON]], atol=1e-5)
    want = 0.8 * np.eye(7)[split.labels] + 0.2 * S.temper(probs, 4.0)
    np.testing.assert_allclose(out.soft, want, atol=1e-6)
    assert split.soft is None  # the reader's split is left as it was
    assert list(Path(os.environ["RESEMOTENET_CACHE"]).glob("faceapi-probs-*.npy"))

    def no_scoring(*a, **k):
        raise AssertionError("scored again instead of reading the cache")

    monkeypatch.setattr(S, "predict_probs", no_scoring)
    np.testing.assert_allclose(S.with_faceapi_targets(split, net, 0.2, 4.0).soft, out.soft)


TINY = [
    *TINY_RECIPE,
    "epochs=1",
    "max_steps_per_epoch=2",
    "test_at_end=false",
]


def test_a_run_with_the_teacher_blends_its_labels_and_names_it_on_the_card(package, fer2013_csv, tmp_path):
    over = [f"data.root={fer2013_csv}", f"output={tmp_path / 'run'}", f"faceapi_teacher={package[0]}", *TINY]
    cfg = load_config(None, over)
    splits = load_data(cfg)
    train = splits["train"]
    assert train.soft is not None and splits["val"].soft is None
    np.testing.assert_allclose(train.soft.sum(1), 1.0, atol=1e-5)
    assert (train.soft[np.arange(len(train)), train.labels] >= 0.8).all()  # weight 0.2: the label keeps 0.8+
    Trainer(cfg).fit()
    card = load_checkpoint(tmp_path / "run" / "best.pt").card
    assert "face-api FaceExpressionNet (@vladmandic/face-api@1.7.15, weight 0.2, T 4.0)" in card.training_data


def test_a_run_asking_for_another_version_is_refused_before_anything_is_written(package, fer2013_csv, tmp_path):
    _break(package[0], "other version")
    run = tmp_path / "run"
    cfg = load_config(None, [f"data.root={fer2013_csv}", f"output={run}", f"faceapi_teacher={package[0]}", *TINY])
    with pytest.raises(CheckpointError, match=INSTALL):
        Trainer(cfg).fit()
    assert not run.exists()


@pytest.mark.parametrize("key,value", [("faceapi_weight", "1.5"), ("faceapi_temperature", "0")])
def test_teacher_settings_are_checked(key, value):
    with pytest.raises(ConfigError, match="faceapi_weight must lie in"):
        load_config(None, [f"{key}={value}"])


# ---- the real package, where this machine has it ----------------------------------------------
# face-api 1.7.15's own output (tools/faceapi_reference.mjs, tfjs 4.22.0 CPU backend) for the two
# faces np.random.default_rng(0).integers(0, 256, (112, 112, 3)) draws, in face-api's order
FACEAPI_REFERENCE = [
    [0.25544122, 0.05535467, 0.46651828, 0.01065519, 0.13624531, 0.00211197, 0.07367343],
    [0.20205013, 0.05541471, 0.09446792, 0.03740434, 0.02616571, 0.00357733, 0.58091986],
]


def test_the_real_network_matches_face_apis_own_output():
    path = os.environ.get("RESEMOTENET_FACEAPI")
    if not path:
        pytest.skip("RESEMOTENET_FACEAPI does not name @vladmandic/face-api@1.7.15's model folder")
    net = load_faceapi(path)
    assert sum(p.numel() for p in net.parameters()) == 323_687 and net.source.endswith("sha256:9a9840f2cf1f4c7e")
    rng = np.random.default_rng(0)
    faces = np.stack([rng.integers(0, 256, (112, 112, 3)).astype(np.uint8) for _ in range(2)])
    np.testing.assert_allclose(_native_probs(net, faces), FACEAPI_REFERENCE, atol=1e-5)


# ---- benchmarks/generalization.py --faceapi ------------------------------------------------------
@pytest.fixture
def bench(monkeypatch):
    import importlib.util
    import sys

    where = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(where))  # the script imports its sibling _timing
    spec = importlib.util.spec_from_file_location("generalization", where / "generalization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("_timing", None)


def test_the_benchmark_scores_face_apis_net_on_the_same_crops(bench, package, tmp_path):
    from conftest import face_like

    rng = np.random.default_rng(0)
    lines = ["file,label,subject"]
    for i, label in enumerate(["happy", "sad"] * 2):
        (tmp_path / "yale" / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "yale" / label / f"s{i}.png"), face_like(rng, EMOTIONS7.index(label), side=40))
        lines.append(f"{label}/s{i}.png,{label},s{i}")
    (tmp_path / "yale" / "labels.csv").write_text("\n".join(lines) + "\n")
    model, meta = bench.open_peer(str(package[0]))
    assert meta["preprocess"]["size"] == 112 and meta["labels"] == list(EMOTIONS7)
    (row,) = bench.measure_xdomain("face-api", bench.xdomain_sets(str(tmp_path)), n_boot=50, peer=str(package[0]))
    assert (row["n"], row["classes"], row["no_face"]) == (4, ["happy", "sad"], 4)
    assert row["crop_acc"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_the_benchmark_refuses_another_version_before_scoring(bench, package, capsys):
    _break(package[0], "other version")
    assert bench.main(["no-such-model", "--only", "xdomain", "--faceapi", str(package[0])]) == 2
    err = capsys.readouterr().err
    assert INSTALL in err and "1.7.14" in err and "no-such-model" not in err
