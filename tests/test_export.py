"""ONNX export (metadata, dynamic batch, parity, atomic writes, errors), the onnxruntime backend,
and static int8 quantization."""

from __future__ import annotations

import errno
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx", exc_type=ImportError)

from conftest import FER2013_CSV, face_like

from resemotenet.cli import main
from resemotenet.config import PreprocessSpec
from resemotenet.data.transforms import preprocess_batch
from resemotenet.export import ExportError, export_onnx, quantize_onnx
from resemotenet.export import onnx as onnx_export
from resemotenet.inference.backends import OnnxBackend, TorchBackend, open_backend
from resemotenet.labels import EMOTIONS7
from resemotenet.models import create_model, load_model, save_model
from resemotenet.models.checkpoint import make_meta
from resemotenet.utils.errors import CheckpointError, ConfigError, DataError, ResEmoteNetError


def faces(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([face_like(rng, i % 7) for i in range(n)])


@pytest.fixture
def no_real_data(monkeypatch):
    """Keep library defaults off the real data (parsing it takes longer than these tests)."""
    monkeypatch.setattr(onnx_export, "find_fer2013", lambda: None)


def save_tiny(path: Path, seed: int = 0) -> Path:
    """A random resemotenet_s at 48x48 grayscale with full metadata (as conftest's tiny_checkpoint)."""
    torch.manual_seed(seed)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
    spec = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))
    return save_model(path, model, make_meta("resemotenet_s", {"num_classes": 7, "in_chans": 1}, spec, EMOTIONS7))


@pytest.fixture(scope="module")
def exported_pair(tmp_path_factory) -> tuple[Path, Path, dict]:
    """One export shared by the tests that only read it (each export takes seconds)."""
    folder = tmp_path_factory.mktemp("export")
    ckpt = save_tiny(folder / "tiny.pt")
    report = export_onnx(ckpt, folder / "tiny.onnx", check_images=faces(40))
    return ckpt, folder / "tiny.onnx", report


@pytest.fixture
def exported(exported_pair, tmp_path) -> Path:
    """A private copy of the shared export (tests may write beside it)."""
    dst = tmp_path / "tiny.onnx"
    shutil.copy(exported_pair[1], dst)
    return dst


def test_export_carries_metadata_and_a_dynamic_batch_axis(exported_pair):
    ckpt, path, report = exported_pair
    assert report["n_check"] == 40 and report["argmax_same"] == 40
    assert 0 <= report["max_abs_diff"] <= 1e-4 and report["exporter"] == "dynamo"
    assert report["size_bytes"] == path.stat().st_size
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props["resemotenet"])
    ckpt_meta = load_model(ckpt).pretrained_cfg
    assert meta == ckpt_meta
    assert json.loads(props["labels"]) == ckpt_meta["labels"]
    assert json.loads(props["preprocess"]) == ckpt_meta["preprocess"]
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value  # symbolic batch
    backend = OnnxBackend(path)
    for n in (1, 3, 17):
        assert backend(torch.zeros(n, 1, 48, 48)).shape == (n, 7)


def test_torch_and_onnxruntime_backends_agree_on_fixture_faces(exported_pair):
    torch_b, onnx_b = open_backend(exported_pair[0]), open_backend(exported_pair[1], engine="onnxruntime")
    assert isinstance(torch_b, TorchBackend) and isinstance(onnx_b, OnnxBackend)
    assert onnx_b.meta["labels"] == torch_b.meta["labels"]
    assert onnx_b.meta["preprocess"] == torch_b.meta["preprocess"]
    x = preprocess_batch(faces(64, seed=5), PreprocessSpec.from_dict(onnx_b.meta["preprocess"]))
    a, b = torch_b(x), onnx_b(x)
    assert (a - b).abs().max() <= 1e-4
    assert torch.equal(a.argmax(1), b.argmax(1))
    with pytest.raises(DataError, match="expects"):
        onnx_b(torch.zeros(2, 3, 64, 64))


def test_existing_output_is_refused_before_any_work(tiny_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_text("keep me")
    monkeypatch.setattr(onnx_export, "load_for_export", lambda *a: pytest.fail("loaded before refusing"))
    with pytest.raises(ConfigError, match="m.onnx: already exists"):
        export_onnx(tiny_checkpoint, out, check_images=faces(8))
    assert out.read_text() == "keep me"


def test_failed_parity_check_leaves_no_file(exported_pair, tmp_path, monkeypatch):
    """The exporter writes a graph whose weights differ from the checkpoint: parity must catch it."""
    other = save_tiny(tmp_path / "other.pt", seed=1)
    monkeypatch.setattr(onnx_export, "_write_onnx", lambda model, x, path, *a: shutil.copy(exported_pair[1], path))
    with pytest.raises(ExportError, match="parity check failed.*m.onnx was not written"):
        export_onnx(other, tmp_path / "m.onnx", check_images=faces(8))
    assert list(tmp_path.iterdir()) == [other]  # no file, no temporary left
    monkeypatch.setattr(onnx_export, "_write_onnx", lambda model, x, path, *a: path.write_bytes(b"\0" * 10))
    with pytest.raises(ExportError, match="onnxruntime cannot load"):
        export_onnx(other, tmp_path / "m.onnx", check_images=faces(8))
    assert list(tmp_path.iterdir()) == [other]


def test_full_disk_leaves_no_truncated_file(exported_pair, tmp_path, monkeypatch):
    def half_written(model, x, path, *a):
        path.write_bytes(exported_pair[1].read_bytes()[:1000])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx_export, "_write_onnx", half_written)
    with pytest.raises(ResEmoteNetError, match="m.onnx: could not write .No space left on device"):
        export_onnx(exported_pair[0], tmp_path / "m.onnx", check_images=faces(8))
    assert list(tmp_path.iterdir()) == []


def test_cli_export_then_eval_matches_torch(tiny_checkpoint, fer2013_csv, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    out.write_text("keep me")
    args = [
        "export",
        str(tiny_checkpoint),
        "--format",
        "onnx",
        "--output",
        str(out),
        "--data",
        str(fer2013_csv),
        "--limit",
        "16",
    ]
    assert main(args) == 2
    assert "already exists (use --force" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(args + ["--force"]) == 0
    printed = capsys.readouterr().out
    assert "parity vs torch on 16 faces of the test split of" in printed
    assert "max |logit diff|" in printed and "argmax identical 16/16" in printed
    accs = []
    for model in (tiny_checkpoint, out):
        assert main(["eval", str(model), "--data", f"fer2013:{fer2013_csv}", "--split", "test"]) == 0
        accs.append(capsys.readouterr().out.splitlines()[0])
    assert accs[0] == accs[1] and "n=35" in accs[0]


def test_not_a_checkpoint_is_one_clear_line(tmp_path, exported, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    for arg in (bad, exported, tmp_path / "missing.pt"):
        assert main(["export", str(arg), "--output", str(tmp_path / "x.onnx"), "--data", "synthetic"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(arg) in err[0], err
    assert not (tmp_path / "x.onnx").exists()


def test_onnx_without_metadata_needs_and_accepts_overrides(exported, tmp_path):
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="labels, mean, std"):
        OnnxBackend(bare)  # size and channels are read from the input shape
    with pytest.raises(CheckpointError, match="7 outputs but 3 labels"):
        OnnxBackend(bare, labels="a,b,c", mean=[0.5], std=[0.25])
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    b = open_backend(bare, labels=",".join(labels), mean=[0.5], std=[0.25])
    assert b.meta["labels"] == labels
    assert b.meta["preprocess"] == {"size": 48, "channels": 1, "mean": [0.5], "std": [0.25]}
    x = torch.randn(4, 1, 48, 48)
    assert torch.allclose(b(x), OnnxBackend(exported)(x))


def test_quantize_is_smaller_keeps_metadata_and_stays_close(exported, tmp_path, no_real_data):
    out = tmp_path / "q.onnx"
    report = quantize_onnx(exported, out, calibration=faces(64, seed=2), calibration_size=48)
    assert report["calibration_size"] == 48 and "FER2013 not found" in report["accuracy_note"]
    assert out.stat().st_size < 0.5 * exported.stat().st_size
    assert report["size_after"] == out.stat().st_size
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    src = {p.key: p.value for p in onnx.load(str(exported)).metadata_props}
    assert props["resemotenet"] == src["resemotenet"] and "calibration" in json.loads(props["quantization"])
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # static QDQ, not dynamic
    x = preprocess_batch(faces(64, seed=3), PreprocessSpec(48, 1, (0.5,), (0.25,)))
    a, b = OnnxBackend(exported)(x), OnnxBackend(out)(x)
    assert (a - b).abs().mean() < 0.1 * a.std()


def test_quantize_refuses_bad_calibration_and_bad_files(exported, tmp_path, no_real_data):
    out = tmp_path / "q.onnx"
    with pytest.raises(DataError, match="no images"):
        quantize_onnx(exported, out, calibration=np.zeros((0, 48, 48), np.uint8))
    with pytest.raises(DataError, match="1x32x32, the model expects 1x48x48"):
        quantize_onnx(exported, out, calibration=np.zeros((4, 1, 32, 32), np.float32))
    with pytest.raises(ConfigError, match="square faces"):
        quantize_onnx(exported, out, calibration=np.zeros((4, 48, 40), np.uint8))
    with pytest.raises(ConfigError, match="FER2013 was not found"):
        quantize_onnx(exported, out)  # never calibrates on noise
    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="no 'resemotenet' metadata"):
        quantize_onnx(tmp_path / "bare.onnx", out, calibration=faces(8))
    out.write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        quantize_onnx(exported, out, calibration=faces(8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.onnx", "q.onnx", "tiny.onnx"]


def test_cli_quantize_with_a_calibration_dataset(exported, fer2013_csv, tmp_path, capsys, no_real_data):
    out = tmp_path / "cli.int8.onnx"
    assert (
        main(["quantize", str(exported), "--output", str(out), "--data", f"fer2013:{fer2013_csv}", "--limit", "32"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "calibrated on 32 faces of fer2013 validation split" in printed and "MB ->" in printed
    assert OnnxBackend(out).meta == OnnxBackend(exported).meta


@pytest.fixture(scope="module")
def real_private_test(tmp_path_factory) -> Path:
    """The first 1,024 PrivateTest rows of the real file, streamed out (parsing it all is slow)."""
    if not FER2013_CSV.is_file():
        pytest.skip(f"real FER2013 not available at {FER2013_CSV}")
    rows = []
    with gzip.open(FER2013_CSV, "rt") as f:
        header = next(f)
        for line in f:
            if line.rstrip().endswith("PrivateTest"):
                rows.append(line)
                if len(rows) == 1024:
                    break
    path = tmp_path_factory.mktemp("real") / "fer2013.csv"
    path.write_text(header + "".join(rows))
    return path


def test_default_parity_check_uses_real_private_test_faces(exported_pair, tmp_path, real_private_test, monkeypatch):
    monkeypatch.setattr(onnx_export, "find_fer2013", lambda: real_private_test)
    report = export_onnx(exported_pair[0], tmp_path / "m.onnx")
    assert report["check_source"] == "1024 FER2013 PrivateTest faces"
    assert report["n_check"] == report["argmax_same"] == 1024 and report["max_abs_diff"] <= 1e-4


def test_torch_backend_folds_batch_norm_without_changing_outputs():
    torch.manual_seed(3)
    model = create_model("resemotenet_s", num_classes=7, in_chans=1).eval()
    for m in model.modules():  # trained-looking statistics, so folding has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        want = model(x)
    fused, plain = TorchBackend(model), TorchBackend(model, fuse=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the caller's model is untouched
    assert (fused(x) - want).abs().max() <= 1e-4 and (plain(x) - want).abs().max() <= 1e-5


def test_torch_backend_keeps_an_untraceable_model_unfused():
    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)

        def forward(self, x):
            y = self.bn(self.conv(x))
            return y if float(y.sum()) > 0 else -y  # data-dependent: torch.fx cannot trace it

    model = Branchy()
    backend = TorchBackend(model)
    assert backend.model is model
    assert backend(torch.randn(2, 1, 8, 8)).shape == (2, 2, 6, 6)
