"""The OpenVINO backend: same file, same metadata, same logits and errors as the onnxruntime one;
engine choice in open_backend; bf16 only where the CPU has it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ov = pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx", exc_type=ImportError)

from conftest import face_like

from resemotenet.config import PreprocessSpec
from resemotenet.data.transforms import preprocess_batch
from resemotenet.export import export_onnx, quantize_onnx
from resemotenet.inference import backends
from resemotenet.inference.backends import AutoBackend, OnnxBackend, OpenVinoBackend, open_backend
from resemotenet.labels import EMOTIONS7
from resemotenet.models import create_model
from resemotenet.models.checkpoint import make_meta
from resemotenet.utils.errors import CheckpointError, ConfigError, DataError

SPEC = PreprocessSpec(size=48, channels=1, mean=(0.5,), std=(0.25,))


def faces(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([face_like(rng, i % 7) for i in range(n)])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A narrow random model exported to fp32 and static int8 ONNX (shared: each takes seconds)."""
    folder = tmp_path_factory.mktemp("ov")
    torch.manual_seed(0)
    kwargs = {"num_classes": 7, "in_chans": 1, "width": 0.125}
    model = create_model("resemotenet", **kwargs).eval()
    model.pretrained_cfg = make_meta("resemotenet", kwargs, SPEC, EMOTIONS7)
    export_onnx(model, folder / "m.onnx", check_images=faces(16))
    quantize_onnx(
        folder / "m.onnx", folder / "m.int8.onnx", calibration=faces(32, seed=2), calibration_size=32, evaluate=False
    )
    return {"fp32": folder / "m.onnx", "int8": folder / "m.int8.onnx"}


def batch(n: int = 24) -> torch.Tensor:
    return preprocess_batch(faces(n, seed=3), SPEC)


def test_openvino_matches_onnxruntime_and_reads_the_metadata(files):
    ort_b, ov_b = OnnxBackend(files["fp32"]), OpenVinoBackend(files["fp32"])
    assert ov_b.meta == ort_b.meta and ov_b.meta["labels"] == list(EMOTIONS7)
    assert ov_b.card == ort_b.card and ov_b.precision == "fp32"
    x = batch()
    a, b = ort_b(x), ov_b(x)
    assert b.shape == (24, 7) and b.dtype == torch.float32
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    assert torch.allclose(ov_b(x[:1]), b[:1], atol=1e-4)  # dynamic batch: one face alone, same logits


def test_outputs_are_not_overwritten_by_the_next_call(files):
    ov_b = OpenVinoBackend(files["fp32"])
    x = batch(8)
    first = ov_b(x[:4])
    kept = first.clone()
    ov_b(x[4:])
    assert torch.equal(first, kept)


def test_int8_file_runs_on_openvino_close_to_onnxruntime(files):
    x = batch(64)
    a = OnnxBackend(files["int8"])(x).argmax(1)
    b = OpenVinoBackend(files["int8"], threads=1)(x).argmax(1)
    assert (a == b).float().mean() >= 0.9


def test_open_backend_engine_choice(files, monkeypatch):
    monkeypatch.delenv(backends.ENGINE_ENV, raising=False)
    assert isinstance(open_backend(files["fp32"]), AutoBackend)  # auto, both installed: measured per batch size
    assert isinstance(open_backend(files["fp32"], precision="fp32"), AutoBackend)  # the default: still both
    assert isinstance(open_backend(files["fp32"], hint="THROUGHPUT"), OpenVinoBackend)  # OpenVINO-only setting
    assert isinstance(open_backend(files["fp32"], engine="openvino"), OpenVinoBackend)
    assert isinstance(open_backend(files["fp32"], engine="onnxruntime"), OnnxBackend)
    monkeypatch.setenv(backends.ENGINE_ENV, "openvino")
    assert isinstance(open_backend(files["fp32"]), OpenVinoBackend)
    assert isinstance(open_backend(files["fp32"], engine="onnxruntime"), OnnxBackend)  # the argument wins
    with pytest.raises(ConfigError, match="valid: auto, onnxruntime, openvino"):
        open_backend(files["fp32"], engine="tensorrt")
    with pytest.raises(ConfigError, match="openvino engine only"):
        open_backend(files["fp32"], engine="onnxruntime", precision="bf16")


def test_auto_backend_routes_each_batch_size_to_the_engine_it_measured_faster(files):
    auto = AutoBackend(files["fp32"], probe_runs=2)
    assert set(auto.choice) == {"single", "batch"}
    assert all(set(t) == {"onnxruntime", "openvino"} and min(t.values()) > 0 for t in auto.timings.values())
    for key, times in auto.timings.items():
        assert auto.choice[key] == min(times, key=times.__getitem__)
    assert auto.meta == OnnxBackend(files["fp32"]).meta and auto.card is not None
    x = batch(8)
    assert torch.allclose(auto(x), OnnxBackend(files["fp32"])(x), atol=1e-4)
    calls = []

    def spy(name: str):
        return lambda x: calls.append((name, len(x))) or torch.zeros(len(x), 7)

    auto.engines = {name: spy(name) for name in auto.engines}
    auto.choice = {"single": "onnxruntime", "batch": "openvino"}
    auto(x[:1]), auto(x)
    assert calls == [("onnxruntime", 1), ("openvino", 8)]


def test_auto_backend_keeps_working_when_a_probe_cannot_run(files, tmp_path):
    """A file whose batch axis is fixed at 1 (as files exported elsewhere often are): every engine
    runs a batch one face at a time, so auto opens it, probes both sizes and answers a batch."""
    proto = onnx.load(str(files["fp32"]))
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    dim0.ClearField("dim_param")
    dim0.dim_value = 1
    fixed = tmp_path / "fixed.onnx"
    onnx.save(proto, str(fixed))
    auto = AutoBackend(fixed, probe_runs=1)
    x = batch(5)
    ref = OnnxBackend(files["fp32"])(x)
    assert set(auto.timings["batch"]) == {"onnxruntime", "openvino"}
    for be in (auto, OnnxBackend(fixed), OpenVinoBackend(fixed)):
        assert torch.allclose(be(x), ref, atol=1e-4)


def test_errors_are_typed(files, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        OpenVinoBackend(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OpenVinoBackend(bad)
    with pytest.raises(DataError, match=r"expects \(N, 1, 48, 48\)"):
        OpenVinoBackend(files["fp32"])(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="precision"):
        OpenVinoBackend(files["fp32"], precision="fp16")


def test_file_without_metadata_needs_overrides(files, tmp_path):
    proto = onnx.load(str(files["fp32"]))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(CheckpointError, match="labels"):
        OpenVinoBackend(bare)
    b = OpenVinoBackend(bare, labels=",".join(EMOTIONS7), mean=[0.5], std=[0.25])
    assert b.meta["preprocess"]["size"] == 48 and b.meta["preprocess"]["channels"] == 1  # from the input shape
    with pytest.raises(CheckpointError, match="7 outputs but 2 labels"):
        OpenVinoBackend(bare, labels="a,b", mean=[0.5], std=[0.25])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True), (set(), False)],
)
def test_native_bf16_from_cpu_flags(monkeypatch, flags, expected):
    import resemotenet.utils.runtime as runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    assert backends.native_bf16() is expected


def test_bf16_only_where_openvino_reports_it(files):
    core = ov.Core()
    if backends.native_bf16(core):
        b = OpenVinoBackend(files["fp32"], precision="bf16")
        x = batch(32)
        assert (b(x).argmax(1) == OnnxBackend(files["fp32"])(x).argmax(1)).float().mean() >= 0.8
    else:
        with pytest.raises(ConfigError, match="native bf16"):
            OpenVinoBackend(files["fp32"], precision="bf16")
