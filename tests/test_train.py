"""The trainer: a one-epoch fit on a fixture, exact resume, run folder contents, config errors,
and two-process training with torchrun semantics (gloo)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_RECIPE

from resemotenet.cli import main
from resemotenet.config import load_config
from resemotenet.engine.trainer import Trainer, lr_at, train
from resemotenet.models.checkpoint import load_checkpoint
from resemotenet.utils.errors import ConfigError

TINY = [
    *TINY_RECIPE,
    "augment.shift=0.1",
    "augment.rotate=5",
    "augment.erasing=0.25",
]


def tiny_cfg(csv_path: Path, out: Path, *extra: str):
    return load_config(None, [f"data.root={csv_path}", f"output={out}", "epochs=2", *TINY, *extra])


def test_one_epoch_fit_writes_a_self_describing_run(fer2013_csv, tmp_path):
    result = train(tiny_cfg(fer2013_csv, tmp_path / "run", "epochs=1"))
    run = tmp_path / "run"
    assert {"config.yaml", "results.csv", "best.pt", "last.pt", "test_metrics.json"} <= {p.name for p in run.iterdir()}
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert len(rows) == 1 and 0 <= float(rows[0]["val_acc"]) <= 1
    test = json.loads((run / "test_metrics.json").read_text())
    assert test["n"] == 35 and test == {**test, **result["test"]}
    _, meta, extra = load_checkpoint(run / "best.pt")
    assert meta["preprocess"]["size"] == 48 and meta["labels"][0] == "angry"
    assert extra["epoch"] == 0


def test_a_run_can_leave_the_test_split_unread(fer2013_csv, tmp_path, monkeypatch, capsys):
    import resemotenet.engine.trainer as trainer_mod

    seen = []

    def recording(model, split, *a, **k):
        seen.append(split.name)
        return real_evaluate(model, split, *a, **k)

    real_evaluate = trainer_mod.evaluate
    monkeypatch.setattr(trainer_mod, "evaluate", recording)
    result = train(tiny_cfg(fer2013_csv, tmp_path / "run", "epochs=1", "test_at_end=false"))
    run = tmp_path / "run"
    assert "test" not in result and not (run / "test_metrics.json").exists()
    assert (run / "best.pt").is_file() and len(list(csv.DictReader((run / "results.csv").open()))) == 1
    assert "test split not evaluated (test_at_end: false)" in capsys.readouterr().out
    assert seen == ["val"]  # one validation pass; the test split is never evaluated


def test_every_epoch_is_kept_and_averages(fer2013_csv, tmp_path, capsys):
    train(tiny_cfg(fer2013_csv, tmp_path / "run", "save_every_epoch=true"))
    run = tmp_path / "run"
    kept = sorted(p.name for p in run.glob("epoch*.safetensors"))
    assert kept == ["epoch001.safetensors", "epoch002.safetensors"]
    last, _, _ = load_checkpoint(run / "last.pt")
    state, meta, _ = load_checkpoint(run / "epoch002.safetensors")
    assert meta["epoch"] == 1 and all(torch.equal(state[k], last[k]) for k in last)
    assert main(["average", *(str(run / k) for k in kept), "-o", str(run / "avg.pt")]) == 0
    assert "averaged 2 checkpoints" in capsys.readouterr().out


def test_resume_continues_exactly(fer2013_csv, tmp_path, monkeypatch):
    torch.set_num_threads(1)  # bit-exact comparison needs the same reduction order
    train(tiny_cfg(fer2013_csv, tmp_path / "straight"))
    real_epoch = Trainer._train_epoch

    def stop_in_second_epoch(self, epoch, *a):
        if epoch == 1:
            raise KeyboardInterrupt  # the session stops mid-run
        return real_epoch(self, epoch, *a)

    monkeypatch.setattr(Trainer, "_train_epoch", stop_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg(fer2013_csv, tmp_path / "resumed"))
    monkeypatch.setattr(Trainer, "_train_epoch", real_epoch)
    train(tiny_cfg(fer2013_csv, tmp_path / "resumed"), resume=True)
    a, _, ea = load_checkpoint(tmp_path / "straight" / "last.pt")
    b, _, eb = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert ea["epoch"] == eb["epoch"] == 1
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader((tmp_path / "resumed" / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["0", "1"]


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_balanced_loss_weights_follow_balance_power(fer2013_csv, tmp_path, power):
    lines = fer2013_csv.read_text().splitlines()  # keep 2 of the 20 'disgust' training rows
    disgust = [i for i, line in enumerate(lines) if line.startswith("1,") and line.endswith(",Training")]
    kept = [line for i, line in enumerate(lines) if i not in set(disgust[2:])]
    fer2013_csv.write_text("\n".join(kept) + "\n")
    trainer = Trainer(tiny_cfg(fer2013_csv, tmp_path / "run", "balance=loss", f"balance_power={power}"))
    trainer._setup()
    counts = torch.tensor([20.0, 2, 20, 20, 20, 20, 20])
    assert trainer.splits["train"].counts().tolist() == counts.tolist()
    expected = (122 / (7 * counts)) ** power  # 8.71x for disgust at power 1, its square root (2.95x) at 0.5
    assert torch.allclose(trainer.task.class_weights, expected)
    assert trainer.task.class_weights[1] == pytest.approx(8.714**power, rel=1e-3)


def test_a_negative_balance_power_is_a_config_error():
    with pytest.raises(ConfigError, match="balance_power"):
        load_config(None, ["balance_power=-1"])


def test_learning_rate_schedule_warmup_and_cosine():
    cfg = load_config(None, ["lr=0.1", "warmup_epochs=1", "scheduler=cosine"])
    lrs = [lr_at(cfg, s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert lrs[10] == pytest.approx(0.1) and lrs[-1] < 0.001
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:]))


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).resolve().parents[1].glob("configs/**/*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_config_loads(path):
    cfg = load_config(str(path), [])
    classes = 8 if cfg.data.name == "ferplus" else 7  # FER+ with contempt, else the 7 basic emotions
    assert cfg.epochs > 0 and cfg.model.num_classes == classes and cfg.output.startswith("runs/")


def test_unknown_config_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        load_config(None, ["epoch=3"])
    with pytest.raises(ConfigError, match="optimizer='rmsprop'"):
        load_config(None, ["optimizer=rmsprop"])


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "--data", f"fer2013:{tmp_path}/nope.csv", "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.csv: file not found" in err[0]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\nbogus: 2\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "bogus" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_cli_train_then_eval(fer2013_csv, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", f"fer2013:{fer2013_csv}", "--epochs", "1", "--output", str(run), "--no-progress"]
    args += [x for t in TINY for x in ("--set", t)]
    assert main(args) == 0
    assert (
        main(
            [
                "eval",
                str(run / "best.pt"),
                "--data",
                f"fer2013:{fer2013_csv}",
                "--split",
                "test",
                "--tta",
                "tencrop",
                "--output",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fer2013 test: n=35 accuracy" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["tta"] == "tencrop" and len(m["confusion"]) == 7
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_training_sees_each_sample_once(fer2013_csv, tmp_path):
    """torchrun-style launch with 2 CPU processes (gloo): rank 0 alone writes the run."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "resemotenet",
        "train",
        "--data",
        f"fer2013:{fer2013_csv}",
        "--epochs",
        "1",
        "--output",
        str(out),
        "--no-progress",
    ] + [x for t in TINY for x in ("--set", t)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("epoch 1/1") == 1  # one process logs
    assert (out / "best.pt").is_file() and (out / "test_metrics.json").is_file()


def test_loader_shards_cover_every_sample_once():
    from resemotenet.data.dataset import BatchLoader

    imgs = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    y = torch.arange(10)
    seen = []
    for rank in range(2):
        ld = BatchLoader(imgs, y, batch_size=5, shuffle=True, seed=3, rank=rank, world=2)
        ld.set_epoch(4)
        seen += [int(v) for _, yb in ld for v in yb]
    assert sorted(seen) == list(range(10))


def test_amp_auto_follows_the_cpu(monkeypatch):
    import resemotenet.utils.runtime as runtime
    from resemotenet.engine.trainer import use_amp

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx2", "avx512f"})  # AVX-512 without bf16
    assert use_amp("auto", cpu) is False
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert use_amp("auto", cpu) is True
    assert use_amp(False, cpu) is False and use_amp(True, cpu) is True
    with pytest.raises(ConfigError, match="amp must be"):
        load_config(None, ["amp=fast"])
    assert load_config(None, ["amp=auto"]).amp == "auto"


@pytest.mark.parametrize(("flag", "expected"), [(["--amp"], "amp=true"), (["--amp", "auto"], "amp=auto"), ([], None)])
def test_amp_flag_maps_to_the_config(flag, expected):
    from resemotenet.cli import build_parser
    from resemotenet.cli.train import overrides_from_args

    amp = [o for o in overrides_from_args(build_parser().parse_args(["train", *flag])) if o.startswith("amp=")]
    assert amp == ([expected] if expected else [])


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_optimizer_is_fused_on_cpu_and_steps_like_the_default(name):
    import dataclasses

    from resemotenet.config import TrainConfig
    from resemotenet.engine.trainer import make_optimizer
    from resemotenet.models import create_model

    torch.manual_seed(0)
    cfg = dataclasses.replace(TrainConfig(), optimizer=name, lr=0.05, weight_decay=1e-3, nesterov=name == "sgd")
    models = [create_model("resemotenet_t", in_chans=1).eval() for _ in range(2)]  # eval: no dropout noise
    models[1].load_state_dict(models[0].state_dict())
    start = {k: v.clone() for k, v in models[0].state_dict().items()}
    fused = make_optimizer(cfg, models[0])
    assert fused.defaults.get("fused") is True
    # the same groups and settings on the second copy, without the fused kernel
    plain = type(fused)(
        [
            {"params": [p for p in models[1].parameters() if p.ndim > 1], "weight_decay": cfg.weight_decay},
            {"params": [p for p in models[1].parameters() if p.ndim <= 1], "weight_decay": 0.0},
        ],
        **({"lr": cfg.lr} if name == "adamw" else {"lr": cfg.lr, "momentum": cfg.momentum, "nesterov": True}),
    )
    assert not plain.defaults.get("fused")
    x = torch.randn(4, 1, 48, 48)
    for _ in range(3):
        for m, opt in zip(models, (fused, plain)):
            opt.zero_grad()
            m(x).logsumexp(1).mean().backward()
            opt.step()
    assert any(not torch.equal(a, start[k]) for k, a in models[0].state_dict().items())  # it did train
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_a_sigkilled_run_resumes_exactly_and_drops_its_partial_files(fer2013_csv, tmp_path):
    """A real SIGKILL mid-run (not an exception the trainer could catch), then --resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    torch.set_num_threads(1)
    train(tiny_cfg(fer2013_csv, tmp_path / "straight", "epochs=6"))
    run = tmp_path / "killed"
    overrides = [f"data.root={fer2013_csv}", f"output={run}", "epochs=6", *TINY]
    code = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from resemotenet.config import load_config\nfrom resemotenet.engine.trainer import train\n"
        "train(load_config(None, sys.argv[1:]))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *overrides], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            results = run / "results.csv"
            if results.exists() and len(results.read_text().splitlines()) >= 2:  # epoch 0 saved
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len((run / "results.csv").read_text().splitlines()) - 1
    assert 1 <= done < 6
    partial = run / ".last.pt.k1ll3d.tmp"  # what a kill during a checkpoint save leaves
    partial.write_bytes(b"half a checkpoint")
    train(tiny_cfg(fer2013_csv, run, "epochs=6"), resume=True)
    assert not partial.exists()
    a, _, ea = load_checkpoint(tmp_path / "straight" / "last.pt")
    b, _, eb = load_checkpoint(run / "last.pt")
    assert ea["epoch"] == eb["epoch"] == 5
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [r["epoch"] for r in rows] == [str(e) for e in range(6)]


@pytest.mark.parametrize("where", ["before the results row", "between best.pt and last.pt"])
def test_a_stop_inside_the_epoch_end_keeps_results_csv_and_checkpoints_in_step(
    fer2013_csv, tmp_path, monkeypatch, where
):
    from resemotenet.engine import callbacks

    torch.set_num_threads(1)
    train(tiny_cfg(fer2013_csv, tmp_path / "straight", "epochs=3"))
    run = tmp_path / "stopped"
    if where == "before the results row":
        real_log = callbacks.CSVLogger.log

        def stop(self, row):
            if int(row["epoch"]) == 1:
                raise KeyboardInterrupt
            return real_log(self, row)

        monkeypatch.setattr(callbacks.CSVLogger, "log", stop)
    else:
        real_save = Trainer._save

        def stop(self, name, epoch, row=None):
            if name == "last.pt" and epoch == 1:
                raise KeyboardInterrupt
            return real_save(self, name, epoch, row)

        monkeypatch.setattr(Trainer, "_save", stop)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_cfg(fer2013_csv, run, "epochs=3"))
    monkeypatch.undo()
    torch.set_num_threads(1)
    train(tiny_cfg(fer2013_csv, run, "epochs=3"), resume=True)
    straight = list(csv.DictReader((tmp_path / "straight" / "results.csv").open()))
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [r["val_acc"] for r in rows] == [r["val_acc"] for r in straight]
    for name in ("last.pt", "best.pt"):
        a, _, ea = load_checkpoint(tmp_path / "straight" / name)
        b, _, eb = load_checkpoint(run / name)
        assert ea["epoch"] == eb["epoch"], name
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_train_takes_the_cli_flags_as_keywords(tmp_path, fer2013_csv, tiny_checkpoint):
    """The library owns composition: every flag of ``resemotenet train`` is a keyword of ``train``,
    and ``init_from`` without a recipe adopts the checkpoint's architecture and preprocessing."""
    from resemotenet.models.checkpoint import load_checkpoint

    out = tmp_path / "run"
    result = train(
        init_from=str(tiny_checkpoint),
        data=f"fer2013:{fer2013_csv}",
        epochs=1,
        batch_size=16,
        output=str(out),
        progress=False,
        set=["test_at_end=false"],
    )
    assert result["run_dir"] == str(out)
    base, run = load_checkpoint(tiny_checkpoint).card, load_checkpoint(out / "best.pt").card
    assert run.arch == base.arch and run.preprocess == base.preprocess
    with pytest.raises(ConfigError, match="unknown train keyword"):
        train(epoch=3)
