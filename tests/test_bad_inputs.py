"""The bad-input corpus: every command meets broken files, hostile checkpoints, typos and full
disks, and must answer with one clear line naming the input, a non-zero exit, no traceback, no
silent skip and no half-written file.

Each case builds its input in ``tmp_path``, runs the CLI in-process and is judged by the same
rules (``_judge``); a case may add its own checks (the message, files left intact)."""

from __future__ import annotations

import errno
import json
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_fer2013_csv

from resemotenet.cli import main

TINY_RUN = [
    "--set",
    "model.kwargs={width: 0.125}",
    "--set",
    "preprocess.size=48",
    "--set",
    "preprocess.channels=1",
    "--set",
    "preprocess.mean=[0.5]",
    "--set",
    "preprocess.std=[0.25]",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--no-progress",
]


def _judge(capsys, code: int, expect_code: int | tuple[int, ...], needles: tuple[str, ...], root: Path) -> str:
    """The common rules; returns stderr for case-specific checks."""
    out, err = capsys.readouterr()
    both = out + err
    assert "Traceback" not in both, both
    codes = expect_code if isinstance(expect_code, tuple) else (expect_code,)
    assert code in codes, f"exit {code}, expected {codes}: {both}"
    errors = [line for line in err.splitlines() if "error" in line]
    assert errors, f"no error line on stderr: {both}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    assert not [p for p in root.rglob("*.tmp")], "a temporary file was left behind"
    assert not [p for p in root.rglob("*.partial.*")], "a partial file was left behind"
    return err


# ---- inputs --------------------------------------------------------------------------------------
def _zero_byte(d: Path) -> Path:
    (d / "empty.jpg").write_bytes(b"")
    return d / "empty.jpg"


def _truncated(d: Path) -> Path:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), 120, np.uint8))
    (d / "cut.jpg").write_bytes(buf.tobytes()[:100])
    return d / "cut.jpg"


def _renamed_text(d: Path) -> Path:
    (d / "notes.png").write_text("not an image at all")
    return d / "notes.png"


def _bomb(d: Path) -> Path:
    from test_predict import bomb_png

    return bomb_png(d / "bomb.png", 30000)


def _broken_video(d: Path) -> Path:
    (d / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    return d / "broken.mp4"


def _empty_video(d: Path) -> Path:
    (d / "empty.avi").write_bytes(b"")
    return d / "empty.avi"


@pytest.mark.parametrize(
    "make",
    [_zero_byte, _truncated, _renamed_text, _bomb, _broken_video, _empty_video],
    ids=lambda f: f.__name__.strip("_"),
)
def test_predict_bad_media_is_listed_not_skipped(make, tmp_path, tiny_checkpoint, capsys):
    bad = make(tmp_path)
    out = tmp_path / "r.jsonl"
    code = main(["predict", str(bad), "--model", str(tiny_checkpoint), "-o", str(out)])
    err = _judge(capsys, code, 1, (bad.name,), tmp_path)
    assert "failed (1" in err
    listed = [json.loads(line) for line in (tmp_path / "r.errors.jsonl").read_text().splitlines()]
    assert [Path(e["source"]).name for e in listed] == [bad.name] and listed[0]["error"]


def test_no_face_image_gets_a_row(tmp_path, tiny_checkpoint, capsys):
    import cv2

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 90, np.uint8))
    out = tmp_path / "r.jsonl"
    assert main(["predict", str(blank), "--model", str(tiny_checkpoint), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{**rows[0], "source": str(blank), "status": "no_face", "label": None}]
    assert "1 image(s) with no face" in capsys.readouterr().out


# ---- datasets --------------------------------------------------------------------------------------
def _csv_bad_pixels(d: Path) -> Path:
    p = write_fer2013_csv(d / "bad.csv", {"Training": 3, "PublicTest": 1, "PrivateTest": 1})
    lines = p.read_text().splitlines()
    lines[2] = "3,1 2 3,Training"
    p.write_text("\n".join(lines) + "\n")
    return p


def _csv_missing_column(d: Path) -> Path:
    (d / "bad.csv").write_text("emotion,Usage\n3,Training\n")
    return d / "bad.csv"


def _csv_bad_label(d: Path) -> Path:
    p = write_fer2013_csv(d / "bad.csv", {"Training": 3, "PublicTest": 1, "PrivateTest": 1})
    lines = p.read_text().splitlines()
    lines[1] = "9" + lines[1][1:]
    p.write_text("\n".join(lines) + "\n")
    return p


def _csv_truncated_gz(d: Path) -> Path:
    import gzip

    data = gzip.compress(write_fer2013_csv(d / "full.csv", {"Training": 20}).read_bytes())
    (d / "bad.csv.gz").write_bytes(data[: len(data) // 2])
    return d / "bad.csv.gz"


DATASET_CASES = {
    "bad_pixels": (_csv_bad_pixels, "line 3: pixels has 3 values"),
    "missing_column": (_csv_missing_column, "missing column(s) ['pixels']"),
    "bad_label": (_csv_bad_label, "emotion 9 is not a FER2013 label"),
    "truncated_gz": (_csv_truncated_gz, "truncated or corrupt"),
}


@pytest.mark.parametrize("case", sorted(DATASET_CASES))
@pytest.mark.parametrize("command", ["train", "eval", "audit"])
def test_bad_dataset_files(case, command, tmp_path, tiny_checkpoint, capsys):
    make, needle = DATASET_CASES[case]
    bad = make(tmp_path)
    argv = {
        "train": ["train", "--data", f"fer2013:{bad}", "-o", str(tmp_path / "run"), *TINY_RUN],
        "eval": ["eval", str(tiny_checkpoint), "--data", f"fer2013:{bad}"],
        "audit": ["audit", "--data", f"fer2013:{bad}", "-o", str(tmp_path / "audit")],
    }[command]
    _judge(capsys, main(argv), 2, (bad.name, needle), tmp_path)
    assert not (tmp_path / "run").exists(), "a run folder was half-written"


def test_ferplus_option_without_its_file(tmp_path, fer2013_csv, capsys):
    argv = [
        "train",
        "--data",
        f"fer2013:{fer2013_csv}",
        "--data-option",
        f"ferplus={tmp_path}/none.csv",
        "-o",
        str(tmp_path / "run"),
        *TINY_RUN,
    ]
    _judge(capsys, main(argv), 2, ("none.csv", "not found"), tmp_path)
    assert not (tmp_path / "run").exists()


# ---- checkpoints ---------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs code: the marker file proves whether it ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _foreign(d: Path) -> Path:
    torch.save({"weight": torch.zeros(3)}, d / "foreign.pt")
    return d / "foreign.pt"


def _truncated_ckpt(d: Path, src: Path) -> Path:
    (d / "cut.pt").write_bytes(src.read_bytes()[:2000])
    return d / "cut.pt"


def _malicious(d: Path) -> Path:
    with open(d / "evil.pt", "wb") as f:
        pickle.dump({"model": _Payload(d / "MARKER")}, f)
    return d / "evil.pt"


def _broken_meta(d: Path, src: Path) -> Path:
    obj = torch.load(src, weights_only=True)
    obj["resemotenet"] = "{not json"
    torch.save(obj, d / "badmeta.pt")
    return d / "badmeta.pt"


def _meta_without_model(d: Path, src: Path) -> Path:
    obj = torch.load(src, weights_only=True)
    meta = json.loads(obj["resemotenet"])
    del meta["model"]
    obj["resemotenet"] = json.dumps(meta)
    torch.save(obj, d / "nomodel.pt")
    return d / "nomodel.pt"


CHECKPOINT_CASES: dict[str, tuple[Callable, str]] = {
    "foreign": (lambda d, s: _foreign(d), "not a ResEmoteNet checkpoint"),
    "truncated": (_truncated_ckpt, "not a loadable checkpoint"),
    "malicious": (lambda d, s: _malicious(d), "refused"),
    "broken_meta": (_broken_meta, "not valid JSON"),
    "no_model_name": (_meta_without_model, "lacks 'model'"),
    "missing": (lambda d, s: d / "nowhere.pt", "not found"),
    "text": (lambda d, s: (d / "notes.pt").write_text("hello") and d / "notes.pt", "not a checkpoint file"),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
@pytest.mark.parametrize("command", ["predict", "eval", "export", "info", "train"])
def test_bad_checkpoints(case, command, tmp_path, tiny_checkpoint, fer2013_csv, capsys):
    make, needle = CHECKPOINT_CASES[case]
    bad = make(tmp_path, tiny_checkpoint)
    from resemotenet.inference.sources import demo_image

    argv = {
        "predict": ["predict", str(demo_image()), "--model", str(bad), "-o", str(tmp_path / "r.jsonl")],
        "eval": ["eval", str(bad), "--data", f"fer2013:{fer2013_csv}"],
        "export": ["export", str(bad), "--format", "safetensors", "-o", str(tmp_path / "x.safetensors")],
        "info": ["info", str(bad)],
        "train": [
            "train",
            "--init-from",
            str(bad),
            "--data",
            f"fer2013:{fer2013_csv}",
            "-o",
            str(tmp_path / "run"),
            "--no-progress",
            "--epochs",
            "1",
        ],
    }[command]
    _judge(capsys, main(argv), 2, (bad.name, needle), tmp_path)
    assert not (tmp_path / "MARKER").exists(), "a pickled payload ran"
    assert not (tmp_path / "x.safetensors").exists() and not (tmp_path / "r.jsonl").exists()


# ---- typos and settings --------------------------------------------------------------------------
SETTING_CASES = {
    "lr_text": (["--set", "lr=abc"], "lr: expected a number, got 'abc'"),
    "epochs_text": (["--set", "epochs=abc"], "epochs: expected an integer, got 'abc'"),
    "augment_scalar": (["--set", "augment=5"], "augment: expected a mapping"),
    "unknown_key": (["--set", "augment.spin=3"], "unknown key(s) ['spin']"),
    "bad_yaml": (["--set", "lr=[1"], "not valid YAML"),
    "bad_choice": (["--set", "optimizer=adam"], "optimizer='adam' is not one of"),
}


@pytest.mark.parametrize("case", sorted(SETTING_CASES))
def test_bad_settings(case, tmp_path, fer2013_csv, capsys):
    extra, needle = SETTING_CASES[case]
    argv = ["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(tmp_path / "run"), "--no-progress", *extra]
    _judge(capsys, main(argv), 2, (needle,), tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("device,needle", [("foo", "unknown device 'foo'"), ("cuda:7", "cuda:7")])
@pytest.mark.parametrize("command", ["predict", "demo"])
def test_bad_devices(device, needle, command, tmp_path, tiny_checkpoint, capsys):
    from resemotenet.inference.sources import demo_image

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    argv = {
        "predict": [
            "predict",
            str(demo_image()),
            "--model",
            str(tiny_checkpoint),
            "--device",
            device,
            "-o",
            str(tmp_path / "r.jsonl"),
        ],
        "demo": ["demo", "--device", device, "-o", str(tmp_path / "demo")],
    }[command]
    _judge(capsys, main(argv), 2, (needle,), tmp_path)


def test_duplicate_yaml_key(tmp_path, fer2013_csv, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"epochs: 1\ndata:\n  root: {fer2013_csv}\nepochs: 2\n")
    _judge(
        capsys,
        main(["train", "--config", str(cfg), "-o", str(tmp_path / "run")]),
        2,
        ("c.yaml", "duplicate key 'epochs' (lines 1 and 4)"),
        tmp_path,
    )


def test_config_data_path_is_relative_to_the_config(tmp_path, fer2013_csv, monkeypatch):
    from resemotenet.config import load_config

    (tmp_path / "recipes").mkdir()
    cfg = tmp_path / "recipes" / "r.yaml"
    cfg.write_text(f"data:\n  root: ../{fer2013_csv.name}\n")
    monkeypatch.chdir("/")
    assert Path(load_config(cfg).data.root) == fer2013_csv.resolve()


# ---- existing outputs and resume -----------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path, fer2013_csv) -> Path:
    run = tmp_path / "run"
    assert main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(run), *TINY_RUN]) == 0
    return run


def test_train_refuses_to_overwrite_a_run(finished_run, fer2013_csv, tmp_path, capsys):
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in finished_run.iterdir() if p.is_file()}
    code = main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(finished_run), *TINY_RUN])
    _judge(capsys, code, 2, ("holds a run", "--resume", "--force"), tmp_path)
    assert {p.name: p.read_bytes() for p in finished_run.iterdir() if p.is_file()} == before
    assert main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(finished_run), "--force", *TINY_RUN]) == 0


def test_resume_refuses_changed_settings(finished_run, fer2013_csv, tmp_path, capsys):
    capsys.readouterr()
    argv = ["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(finished_run), "--resume", *TINY_RUN]
    code = main([*argv, "--lr", "0.5"])
    _judge(capsys, code, 2, ("differ from the run's", "lr: run 0.01, now 0.5"), tmp_path)
    code = main([*argv, "--limit", "10"])
    _judge(capsys, code, 2, ("data.limit",), tmp_path)


def test_resume_refuses_an_empty_folder(tmp_path, fer2013_csv, capsys):
    (tmp_path / "new").mkdir()
    code = main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(tmp_path / "new"), "--resume", *TINY_RUN])
    _judge(capsys, code, 2, ("nothing to resume",), tmp_path)


def test_export_refuses_an_existing_file(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"keep me")
    code = main(["export", str(tiny_checkpoint), "--format", "safetensors", "-o", str(out)])
    _judge(capsys, code, 2, ("x.safetensors", "already exists"), tmp_path)
    assert out.read_bytes() == b"keep me"


# ---- full disks ----------------------------------------------------------------------------------
def test_checkpoint_save_on_a_full_disk_is_one_line(tmp_path, fer2013_csv, capsys, monkeypatch):
    """torch's zip writer reports a full disk as a RuntimeError: injected here at the real call."""
    real_save = torch.save

    def full_disk(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", full_disk)
    code = main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(tmp_path / "run"), *TINY_RUN])
    _judge(capsys, code, 2, ("best.pt", "could not write", "nothing was changed"), tmp_path)  # the first save


def test_results_on_a_full_disk_keep_earlier_rows(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    from resemotenet.inference import writers as results
    from resemotenet.inference.sources import demo_image

    real_row = results.JsonlWriter._row

    def row_then_full(self, face):
        if self.rows >= 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_row(self, face)

    monkeypatch.setattr(results.JsonlWriter, "_row", row_then_full)
    out = tmp_path / "r.jsonl"
    code = main(["predict", str(demo_image()), str(demo_image()), "--model", str(tiny_checkpoint), "-o", str(out)])
    _judge(capsys, code, 2, ("r.jsonl", "No space left on device", "row(s) before it are intact"), tmp_path)
    assert len(out.read_text().splitlines()) == 1 and json.loads(out.read_text())["status"] == "face"


def test_a_real_small_filesystem(tmp_path, tiny_checkpoint, capsys):
    """A 256 KiB tmpfs (where this machine lets us mount one): exporting a 20 MB model fails
    cleanly and leaves the file system empty."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("cannot mount a size-limited tmpfs here (needs root)")
    try:
        code = main(["export", str(tiny_checkpoint), "--format", "safetensors", "-o", str(mnt / "m.safetensors")])
        _judge(capsys, code, 2, ("m.safetensors", "could not write"), tmp_path)
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---- extras not installed ------------------------------------------------------------------------
def test_export_without_the_export_extra(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    code = main(["export", str(tiny_checkpoint), "--format", "onnx", "-o", str(tmp_path / "m.onnx")])
    _judge(capsys, code, 2, ("onnx is not installed", "resemotenet[export]"), tmp_path)
    assert not (tmp_path / "m.onnx").exists()


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    from resemotenet.cli import info

    def boom(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(info, "run", boom)
    code = main(["info", str(tiny_checkpoint)])
    err = _judge(capsys, code, 3, ("unexpected error: ZeroDivisionError: a bug", "--debug"), tmp_path)
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "info", str(tiny_checkpoint)])


def test_an_extra_that_is_installed_but_broken_says_so_not_missing(tmp_path, monkeypatch):
    from resemotenet.utils.errors import BrokenExtraError, MissingExtraError, import_extra

    (tmp_path / "brokenextra_pkg").mkdir()
    (tmp_path / "brokenextra_pkg" / "__init__.py").write_text("from json import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BrokenExtraError, match=r"brokenextra_pkg is installed but fails to import \(cannot import"):
        import_extra("brokenextra_pkg", "export")
    with pytest.raises(MissingExtraError, match=r"absent_pkg_xyz is not installed.*resemotenet\[export\]") as info:
        import_extra("absent_pkg_xyz", "export")
    assert not isinstance(info.value, BrokenExtraError)


# ---- the output rule: a table-driven corpus ------------------------------------------------------
# Each case: the command line, the exit code, a pattern its stderr must match, the files made
# beforehand that must come out byte-identical (sha256 before and after) and the paths that must
# not exist afterwards. Placeholders: {tmp} (the case's folder), {ckpt} (a tiny checkpoint),
# {img} (the shipped photo), {fer} (a FER2013 csv), {onnx} (an ONNX file with metadata).
KEEP = b"someone's results, keep me\n"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: int
    message: str
    keep: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    setup: tuple[Callable[[Path], object], ...] = ()
    needs: tuple[str, ...] = ()


def _put(rel: str, data: bytes = KEEP) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)

    return make


def _fake_onnx(root: Path) -> None:
    """An ONNX graph (identity) that carries the package's metadata: enough to pass the model checks."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 48, 48])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, 48, 48])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "g", [x], [y])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    meta = {
        "model": "resemotenet_s",
        "labels": ["a"],
        "preprocess": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.25]},
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = "resemotenet", json.dumps(meta)
    onnx.save(proto, str(root / "fake.onnx"))


def _damaged_cache(root: Path) -> None:
    """The cache file of {fer}, cut in half (a full disk, an interrupted copy)."""
    from resemotenet.utils.io import cache_dir, file_sha256

    cached = cache_dir() / f"fer2013-{file_sha256(root / 'fer2013.csv')[:16]}.npz"
    cached.write_bytes(b"PK\x03\x04" + b"\0" * 200)


PREDICT = ("predict", "{img}", "--model", "{ckpt}")
EXISTS = r"already exists \(use --force to overwrite\)"
EXISTS_OR_APPEND = r"already exists \(use --force to overwrite, or --append to add to it\)"
TRAIN = ("train", "--data", "fer2013:{fer}", *TINY_RUN)

OUTPUT_CASES: dict[str, Case] = {
    # predict: every check before the results file opens; an existing one is refused, never emptied
    "predict_stride_0_keeps_results": Case(
        (*PREDICT, "--stride", "0", "-o", "{tmp}/out.jsonl", "--force"),
        2,
        r"stride must be >= 1, got 0",
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_max_frames_0": Case(
        (*PREDICT, "--max-frames", "0", "-o", "{tmp}/out.jsonl"),
        2,
        r"max_frames must be >= 1, got 0",
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_existing_results": Case(
        (*PREDICT, "-o", "{tmp}/out.jsonl"),
        2,
        r"out\.jsonl: " + EXISTS_OR_APPEND,
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_existing_csv": Case(
        (*PREDICT, "-o", "{tmp}/out.csv"),
        2,
        r"out\.csv: " + EXISTS_OR_APPEND,
        keep=("out.csv",),
        setup=(_put("out.csv"),),
    ),
    "predict_force_and_append": Case(
        (*PREDICT, "-o", "{tmp}/out.jsonl", "--force", "--append"),
        2,
        r"--force .* --append .*choose one",
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_bad_model_with_force": Case(
        ("predict", "{img}", "--model", "{tmp}/none.pt", "-o", "{tmp}/out.jsonl", "--force"),
        2,
        r"none\.pt.*not found",
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_bad_detector_with_force": Case(
        (*PREDICT, "--detector", "nosuch", "-o", "{tmp}/out.jsonl", "--force"),
        2,
        r"nosuch",
        keep=("out.jsonl",),
        setup=(_put("out.jsonl"),),
    ),
    "predict_json_suffix": Case(
        (*PREDICT, "-o", "{tmp}/out.json"), 2, r"must end with one of \.jsonl, \.csv", absent=("out.json",)
    ),
    "predict_output_is_a_folder": Case(
        (*PREDICT, "-o", "{tmp}/results.jsonl"),
        2,
        r"results\.jsonl: is a folder",
        keep=("results.jsonl/x",),
        setup=(_put("results.jsonl/x"),),
    ),
    "predict_output_under_a_file": Case(
        (*PREDICT, "-o", "{tmp}/notes/out.jsonl"),
        2,
        r"cannot be written \(.*notes is a file",
        keep=("notes",),
        setup=(_put("notes"),),
    ),
    "predict_append_other_columns": Case(
        (*PREDICT, "-o", "{tmp}/out.csv", "--append"),
        2,
        r"out\.csv: --append needs the same columns",
        keep=("out.csv",),
        setup=(_put("out.csv", b"a,b,c\n1,2,3\n"),),
    ),
    "predict_annotated_folder_in_use": Case(
        (*PREDICT, "-o", "{tmp}/out.jsonl", "--save-annotated", "{tmp}/ann"),
        2,
        r"ann: " + EXISTS,
        keep=("ann/old.jpg",),
        absent=("out.jsonl",),
        setup=(_put("ann/old.jpg"),),
    ),
    # train: a refusal names the flag that gets past it; a forced run is replaced only once its data loads
    "train_run_without_last_names_force_only": Case(
        (*TRAIN, "-o", "{tmp}/run"),
        2,
        r"run: holds a run \(best\.pt, results\.csv, config\.yaml\); pass --force",
        keep=("run/best.pt", "run/results.csv", "run/config.yaml"),
        setup=(_put("run/best.pt"), _put("run/results.csv"), _put("run/config.yaml")),
    ),
    "train_resume_nothing_there": Case(
        (*TRAIN, "-o", "{tmp}/run", "--resume"),
        2,
        r"nothing to resume .*without --resume",
        keep=("run/config.yaml",),
        setup=(_put("run/config.yaml"),),
    ),
    "train_resume_without_last": Case(
        (*TRAIN, "-o", "{tmp}/run", "--resume"),
        2,
        r"nothing to resume .*--force instead of --resume",
        keep=("run/results.csv",),
        setup=(_put("run/results.csv"),),
    ),
    "train_force_with_bad_data_keeps_the_run": Case(
        ("train", "--data", "fer2013:{tmp}/none.csv", *TINY_RUN, "-o", "{tmp}/run", "--force"),
        2,
        r"none\.csv",
        keep=("run/last.pt", "run/results.csv"),
        setup=(_put("run/last.pt"), _put("run/results.csv")),
    ),
    # export, quantize, average: refused before any work, the same words
    "export_safetensors_exists": Case(
        ("export", "{ckpt}", "--format", "safetensors", "-o", "{tmp}/m.safetensors"),
        2,
        r"m\.safetensors: " + EXISTS,
        keep=("m.safetensors",),
        setup=(_put("m.safetensors"),),
    ),
    "export_onnx_exists": Case(
        ("export", "{ckpt}", "-o", "{tmp}/m.onnx", "--synthetic"),
        2,
        r"m\.onnx: " + EXISTS,
        keep=("m.onnx",),
        setup=(_put("m.onnx"),),
    ),
    "export_without_faces_names_both_ways": Case(
        ("export", "{ckpt}", "-o", "{tmp}/m.onnx"),
        2,
        r"no faces for the parity check: pass --data NAME:PATH.*--synthetic",
        absent=("m.onnx",),
        needs=("onnx", "onnxscript"),
    ),
    "export_synthetic_and_data": Case(
        ("export", "{ckpt}", "-o", "{tmp}/m.onnx", "--synthetic", "--data", "fer2013:{fer}"),
        2,
        r"--synthetic and --data .*give one",
        absent=("m.onnx",),
    ),
    "export_limit_0": Case(
        ("export", "{ckpt}", "-o", "{tmp}/m.onnx", "--synthetic", "--limit", "0"),
        2,
        r"--limit must be >= 1, got 0",
        absent=("m.onnx",),
    ),
    "quantize_exists": Case(
        ("quantize", "{onnx}", "-o", "{tmp}/q.onnx", "--synthetic"),
        2,
        r"q\.onnx: " + EXISTS,
        keep=("q.onnx", "fake.onnx"),
        setup=(_put("q.onnx"), _fake_onnx),
        needs=("onnx",),
    ),
    "quantize_without_data_names_both_ways": Case(
        ("quantize", "{onnx}", "-o", "{tmp}/q.onnx"),
        2,
        r"FER2013 was not found; pass --data NAME:PATH.*--synthetic",
        keep=("fake.onnx",),
        absent=("q.onnx",),
        setup=(_fake_onnx,),
        needs=("onnx", "onnxruntime"),
    ),
    "quantize_missing_model": Case(
        ("quantize", "{tmp}/none.onnx", "-o", "{tmp}/q.onnx", "--synthetic"),
        2,
        r"none\.onnx: ONNX file not found",
        absent=("q.onnx",),
        needs=("onnx",),
    ),
    "average_exists": Case(
        ("average", "{ckpt}", "{ckpt}", "-o", "{tmp}/avg.safetensors"),
        2,
        r"avg\.safetensors: " + EXISTS,
        keep=("avg.safetensors",),
        setup=(_put("avg.safetensors"),),
    ),
    # eval: --limit positive; an existing report refused
    "eval_limit_0": Case(
        ("eval", "{ckpt}", "--data", "fer2013:{fer}", "--limit", "0"), 2, r"--limit must be >= 1, got 0"
    ),
    "eval_limit_negative": Case(
        ("eval", "{ckpt}", "--data", "fer2013:{fer}", "--limit", "-5"), 2, r"--limit must be >= 1, got -5"
    ),
    "eval_report_exists": Case(
        ("eval", "{ckpt}", "--data", "fer2013:{fer}", "-o", "{tmp}/ev"),
        2,
        r"metrics\.json: " + EXISTS,
        keep=("ev/metrics.json",),
        setup=(_put("ev/metrics.json"),),
    ),
    # a damaged cache file is dropped, named and rebuilt: the run goes on
    "damaged_cache_is_rebuilt": Case(
        ("eval", "{ckpt}", "--data", "fer2013:{fer}", "--limit", "8"),
        0,
        r"note: .*fer2013-[0-9a-f]{16}\.npz: damaged cache file \(BadZipFile\) removed; rebuilding it",
        setup=(_damaged_cache,),
    ),
    # the Ray runner: checked in this process before Ray starts
    "ray_workers_0": Case(
        (*PREDICT, "--runner", "ray", "--workers", "0", "-o", "{tmp}/r.jsonl"),
        2,
        r"workers must be >= 1, got 0",
        absent=("r.jsonl", "r.jsonl.parts"),
    ),
    "ray_existing_results": Case(
        (*PREDICT, "--runner", "ray", "-o", "{tmp}/r.jsonl"),
        2,
        r"r\.jsonl: " + EXISTS,
        keep=("r.jsonl",),
        absent=("r.jsonl.parts",),
        setup=(_put("r.jsonl"),),
    ),
    "ray_append": Case(
        (*PREDICT, "--runner", "ray", "--append", "-o", "{tmp}/r.jsonl"),
        2,
        r"--append: not available with --runner ray",
        keep=("r.jsonl",),
        setup=(_put("r.jsonl"),),
    ),
    "ray_bad_model_leaves_no_parts": Case(
        ("predict", "{img}", "--runner", "ray", "--model", "{tmp}/notes.pt", "-o", "{tmp}/r.jsonl"),
        2,
        r"notes\.pt: not a checkpoint file",
        absent=("r.jsonl", "r.jsonl.parts"),
        setup=(_put("notes.pt", b"hello"),),
        needs=("ray", "pyarrow"),
    ),
}


def _hashes(root: Path, rels: tuple[str, ...]) -> dict[str, str]:
    from resemotenet.utils.io import file_sha256

    return {rel: file_sha256(root / rel) for rel in rels}


def _placed(arg: str, places: dict[str, Path]) -> str:
    for key, value in places.items():  # not str.format: the recipes' flags hold braces of their own
        arg = arg.replace("{" + key + "}", str(value))
    return arg


@pytest.mark.parametrize("name", sorted(OUTPUT_CASES))
def test_output_rule_corpus(name, tmp_path, tiny_checkpoint, fer2013_csv, capsys, monkeypatch):
    from resemotenet.inference.sources import demo_image

    case = OUTPUT_CASES[name]
    for module in case.needs:
        pytest.importorskip(module, reason=f"{module} is not installed (an optional extra)")
    monkeypatch.delenv("RESEMOTENET_FER2013", raising=False)  # no faces but those a case names
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for make in case.setup:
        make(tmp_path)
    before = _hashes(tmp_path, case.keep)
    places = {
        "tmp": tmp_path,
        "ckpt": tiny_checkpoint,
        "img": demo_image(),
        "fer": fer2013_csv,
        "onnx": tmp_path / "fake.onnx",
    }
    code = main([_placed(arg, places) for arg in case.argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    assert code == case.code, f"exit {code}, expected {case.code}: {out}{err}"
    assert re.search(case.message, err), f"{case.message!r} not in {err!r}"
    if case.code:
        assert len([line for line in err.splitlines() if "error" in line]) == 1, err
    assert _hashes(tmp_path, case.keep) == before, "an existing output was changed"
    assert not [rel for rel in case.absent if (tmp_path / rel).exists()], "an output was written"
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"


def test_a_run_stopped_in_its_first_epoch_restarts_with_the_same_command(tmp_path, fer2013_csv, capsys):
    """Only config.yaml (a Ctrl-C before the first epoch ended): nothing to lose, no flag needed."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("epochs: 1\n")
    assert main(["train", "--data", f"fer2013:{fer2013_csv}", "-o", str(run), *TINY_RUN]) == 0
    assert (run / "last.pt").is_file() and "epochs: 1\n" != (run / "config.yaml").read_text()


def test_predict_append_adds_rows_and_force_replaces(tmp_path, tiny_checkpoint, capsys):
    from resemotenet.inference.sources import demo_image

    out = tmp_path / "r.jsonl"
    argv = ["predict", str(demo_image()), "--model", str(tiny_checkpoint), "-o", str(out)]
    assert main(argv) == 0
    first = out.read_text()
    assert main([*argv, "--append"]) == 0
    assert out.read_text() == first + first
    assert main([*argv, "--force"]) == 0
    assert out.read_text() == first and not list(tmp_path.glob("*.tmp"))


def test_serve_on_a_busy_port_fails_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import socket

    pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
    from resemotenet.serve import server

    monkeypatch.setattr(server, "run", lambda *a, **kw: pytest.fail("the server started"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--model", "fast", "--port", str(port)])
    out, err = capsys.readouterr()
    assert code == 2 and not out, out
    assert (
        err.strip()
        == f"resemotenet serve: error: port {port} on 127.0.0.1 is in use (another server?): stop it, or choose another --port"
    )
