"""The generic training loop: data in memory, an objective from ``tasks``, callbacks for the rest.

A run folder describes itself: ``config.yaml`` (resolved), ``results.csv`` (one row per epoch),
``best.pt`` (chosen on validation) and ``last.pt`` (for ``--resume``), with ``save_every_epoch``
``epochNNN.safetensors`` (weights of every epoch, for weight averaging), ``test_metrics.json``
(measured once, from ``best.pt``, after training); the CLI draws ``curves.png``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import PreprocessSpec, TrainConfig, load_config, with_overrides
from ..data import load_splits
from ..data.dataset import BatchLoader, Split, materialize
from ..data.transforms import augment_batch, to_nchw
from ..labels import label_names
from ..models import create_model
from ..models.checkpoint import load_checkpoint, make_meta, model_from_state, save_model
from ..models.faceapi import PACKAGE, VERSION, load_faceapi
from ..utils.errors import CheckpointError, ConfigError
from ..utils.io import atomic_write_text
from . import distributed as D
from .callbacks import CSVLogger, EarlyStopping, Progress
from .evaluator import evaluate
from .tasks import ClassificationTask, DistillationTask

STEM = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "se")


def load_data(cfg: TrainConfig) -> dict[str, Split]:
    if not cfg.data.root:
        raise ConfigError("no dataset: give --data NAME:PATH (e.g. fer2013:fer2013.csv) or data.root in the config")
    # a missing or other-version face-api package is refused before any data loads
    faceapi = load_faceapi(cfg.faceapi_teacher) if cfg.faceapi_teacher else None
    splits = load_splits(cfg.data)
    wanted = label_names(cfg.model.num_classes)
    for s in splits.values():
        if tuple(s.label_names) != wanted:
            raise ConfigError(
                f"dataset labels {list(s.label_names)} do not match model.num_classes="
                f"{cfg.model.num_classes} ({list(wanted)})"
            )
    if faceapi is not None:
        splits["train"] = _faceapi_targets(cfg, splits["train"], faceapi)
    return splits


def _faceapi_targets(cfg: TrainConfig, train: Split, net: nn.Module) -> Split:
    """The training split with face-api's soft labels blended in; rank 0 scores the faces and
    fills the cache, the other ranks then read it."""
    from .soft_targets import with_faceapi_targets

    if not D.is_main():
        D.barrier()
    out = with_faceapi_targets(train, net, cfg.faceapi_weight, cfg.faceapi_temperature, progress=cfg.progress)
    if D.is_main():
        D.barrier()
    return out


def faceapi_signal(cfg: TrainConfig) -> str:
    """How the card names face-api's soft labels among the training data."""
    return f"soft labels of face-api FaceExpressionNet ({PACKAGE}@{VERSION}, weight {cfg.faceapi_weight}, T {cfg.faceapi_temperature})"


def build_model(cfg: TrainConfig) -> nn.Module:
    model = create_model(
        cfg.model.name, num_classes=cfg.model.num_classes, in_chans=cfg.preprocess.channels, **cfg.model.kwargs
    )
    if cfg.init_from:
        _init_from(model, cfg)
    if cfg.freeze_stem:
        for name, p in model.named_parameters():
            if name.split(".")[0] in STEM:
                p.requires_grad_(False)
    return model


def _init_from(model: nn.Module, cfg: TrainConfig) -> None:
    """Start from another checkpoint (``default`` = the shipped model); a head of another size
    is left freshly initialised."""
    path = cfg.init_from  # a file, or a shipped name ('default', 'fast')
    ckpt = load_checkpoint(path)
    state = ckpt.state
    if ckpt.card.arch != cfg.model.name:
        raise CheckpointError(f"{path}: holds {ckpt.card.arch!r}, config asks for {cfg.model.name!r}")
    own = model.state_dict()
    fits = {
        k: v.float() if v.is_floating_point() else v for k, v in state.items() if k in own and own[k].shape == v.shape
    }
    missing = set(own) - set(fits)
    if any(not k.startswith("fc4.") for k in missing):
        raise CheckpointError(
            f"{path}: weights do not fit {cfg.model.name!r} (e.g. {sorted(missing)[:3]}); check preprocess.channels"
        )
    model.load_state_dict(fits, strict=False)


def inherited_from_init(cfg: TrainConfig) -> tuple[PreprocessSpec, dict[str, Any]]:
    """What a model trained from ``init_from`` keeps of that checkpoint's card: its framing (how a
    detector's box becomes the crop those weights learnt on; ``benchmarks/framing.py`` measured it)
    and, when the input size and channels are the same and the config names none, the resolution
    larger crops are reduced to (``preprocess.source_size``). Without ``init_from``: the config's
    preprocessing and the default framing."""
    spec = cfg.preprocess
    if not cfg.init_from:
        return spec, {}
    card = load_checkpoint(cfg.init_from).card
    src = card.preprocess
    if (
        spec.source_size is None
        and src.source_size is not None
        and (spec.size, spec.channels) == (src.size, src.channels)
    ):
        spec = replace(spec, source_size=src.source_size)
    return spec, {"framing": card.framing.to_dict()}


def use_amp(amp: bool | str, device: torch.device) -> bool:
    """Resolve ``amp``: ``"auto"`` turns mixed precision on for CUDA and for CPUs that compute
    bf16 natively (AVX512_BF16 or AMX), never where bf16 would only be emulated."""
    if amp != "auto":
        return bool(amp)
    if device.type == "cuda":
        return True
    from ..utils.runtime import native_bf16

    return device.type == "cpu" and native_bf16()


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return _fused_if_possible(torch.optim.AdamW, groups, lr=cfg.lr)
    return _fused_if_possible(torch.optim.SGD, groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


def _fused_if_possible(cls: type, groups: list[dict], **kwargs: object) -> torch.optim.Optimizer:
    """``cls(groups, fused=True, ...)`` where this torch has a fused kernel for the parameters'
    device (CPU and CUDA): one pass over each tensor instead of one per operation, the same
    update to float rounding and the same state dict (the full model's SGD step takes 40 ms
    against 104 ms on a 2-core Xeon, ``benchmarks/train_speed.py``). Otherwise the default."""
    params = [p for g in groups for p in g["params"]]
    if params and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params):
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # an older torch or an unsupported dtype
            pass
    return cls(groups, **kwargs)


def lr_at(cfg: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """Per-step learning rate for the step-wise schedules (linear warm-up, then the decay)."""
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.scheduler in ("constant", "plateau"):
        return cfg.lr
    t = (step - warm) / max(1, total - warm)
    if cfg.scheduler == "onecycle":  # linear decay after the warm-up peak
        return cfg.min_lr + (cfg.lr - cfg.min_lr) * max(0.0, 1 - t)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


RUN_FILES = ("last.pt", "best.pt", "results.csv", "config.yaml", "test_metrics.json", "curves.png")
# settings that may differ on --resume without changing what the run computes
RESUME_FREE = {"progress", "output", "eval_batch_size"}


def check_run_folder(cfg: TrainConfig, resume: bool, force: bool = False) -> list[str]:
    """Never overwrite a finished or running run by accident, never resume a different one.

    Without ``resume`` a folder holding a run is refused (``force`` deletes its run files
    first); a folder holding only ``config.yaml`` (a run stopped in its first epoch: nothing to
    lose) is started afresh. With ``resume`` the folder must hold ``last.pt`` saved with the
    same settings. Every refusal names the flag that gets past it. Returns the files a new run
    replaces; ``clear_run_folder`` deletes them once the data has loaded (a run refused for bad
    data leaves the old run as it was)."""
    out = Path(cfg.output)
    present = [n for n in RUN_FILES if (out / n).exists()]
    if not resume:
        if present and present != ["config.yaml"] and not force:
            how = "continue it with --resume, or " if "last.pt" in present else ""
            raise ConfigError(
                f"{out}: holds a run ({', '.join(present)}); {how}pass --force to start over "
                f"(its files are replaced), or choose another -o"
            )
        return present + [p.name for p in out.glob("epoch*.safetensors")] if present else []
    if D.is_main():
        _remove_partial_files(out)
    last = out / "last.pt"
    if not last.is_file():
        others = [n for n in RUN_FILES if n != "config.yaml" and (out / n).exists()]
        how = (
            f"start it over with --force instead of --resume (its {', '.join(others)} replaced)"
            if others
            else "run the same command without --resume to start it"
        )
        raise ConfigError(f"{out}: nothing to resume (no last.pt: no epoch finished); {how}")
    _, _, extra = load_checkpoint(last)
    try:
        saved = json.loads(extra["config"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{last}: holds no training settings; it cannot be resumed") from None
    changed = _changed(saved, cfg.to_dict())
    if changed:
        raise ConfigError(
            f"{out}: --resume with settings that differ from the run's ({'; '.join(changed[:4])}); "
            f"resume with the run's own settings, or start a new run in another -o"
        )
    return []


def clear_run_folder(out: Path, names: list[str]) -> None:
    """Delete the files of the run a new one replaces (``check_run_folder``'s list)."""
    for n in names:
        (out / n).unlink(missing_ok=True)
    if names:
        _remove_partial_files(out)


def _remove_partial_files(out: Path) -> list[str]:
    """Delete the temporary files a killed run left half-written in ``out`` (``utils.io.atomic_path``
    writes ``.NAME.XXXX.tmp`` and renames it only when complete; a SIGKILL mid-save leaves it,
    up to 640 MB for the full model's checkpoint). The finished files are never touched."""
    names = set(RUN_FILES)
    gone = []
    for p in sorted(out.glob(".*.tmp")):
        stem = p.name[1:].rsplit(".", 2)[0]  # ".last.pt.ab12cd.tmp" -> "last.pt"
        if p.is_file() and (stem in names or (stem.startswith("epoch") and stem.endswith(".safetensors"))):
            p.unlink(missing_ok=True)
            gone.append(p.name)
    if gone:
        print(f"removed {len(gone)} partial file(s) an interrupted run left: {', '.join(gone)}")
    return gone


def _changed(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(saved) | set(now)):
        name = f"{prefix}{key}"
        if name in RESUME_FREE:
            continue
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _changed(a, b, f"{name}.")
        elif _norm(a, name) != _norm(b, name):
            out.append(f"{name}: run {a!r}, now {b!r}")
    return out


def _norm(v: Any, name: str) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(x, name) for x in v]
    if isinstance(v, str) and ("/" in v or "." in v) and Path(v).exists():
        return str(Path(v).resolve())  # the same file, spelled relative or absolute
    return v


class Trainer:
    """Runs ``cfg`` to completion; ``resume=True`` continues a run folder exactly."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, force: bool = False):
        self.cfg, self.resume = cfg, resume
        self.rank, self.world, self.device = D.setup()
        self.replaced = check_run_folder(cfg, resume, force)
        D.barrier()  # every rank has looked at the folder before any rank writes to it
        self.out = Path(cfg.output)
        self.main = D.is_main()

    # ---- set-up -------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        D.seed_everything(cfg.seed)
        self.splits = load_data(cfg)
        train = self.splits["train"]
        # the input the weights will be served with (init_from's reduction of sharp crops kept)
        self.spec, inherited = inherited_from_init(cfg)
        imgs = materialize(train, self.spec.size, gray=self.spec.channels == 1, reduce_to=self.spec.reduce_to)
        self.train_images = to_nchw(imgs).contiguous()
        targets = torch.as_tensor(train.soft if train.soft is not None else train.labels)
        counts = torch.as_tensor(train.counts(), dtype=torch.float).clamp_min(1)
        balanced = (counts.sum() / (len(counts) * counts)) ** cfg.balance_power
        weights = balanced[torch.as_tensor(train.labels)] if cfg.balance == "sampler" else None
        self.loader = BatchLoader(
            self.train_images,
            targets,
            cfg.batch_size,
            shuffle=True,
            weights=weights,
            seed=cfg.seed,
            rank=self.rank,
            world=self.world,
            drop_last=True,
        )
        if len(self.loader) == 0:
            raise ConfigError(
                f"batch_size {cfg.batch_size} x {self.world} process(es) exceeds the {len(train)} training samples"
            )
        self.model = build_model(cfg).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model)
        self.opt = make_optimizer(cfg, self.model)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
        cw = balanced if cfg.balance == "loss" else None
        self.task = self._task(cw)
        self.gen = torch.Generator().manual_seed(cfg.seed * 7919 + self.rank)
        self.stopper = EarlyStopping(cfg.patience)
        self.start_epoch, self.step = 0, 0
        self.last_row: dict[str, Any] = {}
        self.meta = make_meta(
            cfg.model.name,
            {"num_classes": cfg.model.num_classes, "in_chans": cfg.preprocess.channels, **cfg.model.kwargs},
            self.spec,
            label_names(cfg.model.num_classes),
            dataset=cfg.data.name + (f" + {faceapi_signal(cfg)}" if cfg.faceapi_teacher else ""),
            **inherited,
        )
        self.amp = use_amp(cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.device.type == "cuda")

    def _task(self, class_weights: torch.Tensor | None) -> ClassificationTask:
        cfg = self.cfg
        kw = {"label_smoothing": cfg.label_smoothing, "class_weights": class_weights, "mixup": cfg.augment.mixup}
        if not cfg.teacher:
            return ClassificationTask(**kw)
        from ..models.checkpoint import preprocess_of

        ckpt = load_checkpoint(cfg.teacher)
        if list(ckpt.card.labels) != list(label_names(cfg.model.num_classes)):
            raise ConfigError(
                f"{cfg.teacher}: teacher labels {list(ckpt.card.labels)} differ from the student's "
                f"{list(label_names(cfg.model.num_classes))}"
            )
        teacher = model_from_state(ckpt.state, ckpt.card, cfg.teacher).to(self.device)
        return DistillationTask(
            teacher, self.spec, preprocess_of(teacher), cfg.distill_alpha, cfg.distill_temperature, **kw
        )

    # ---- checkpoints ----------------------------------------------------------------------
    def _save(self, name: str, epoch: int, row: dict[str, Any] | None = None) -> None:
        extra = {
            "row": row or {},  # this epoch's results.csv row: a resume rewrites it if the stop came first
            "optimizer": self.opt.state_dict(),
            "plateau": self.plateau.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "stopper": self.stopper.state_dict(),
            "gen_state": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": json.dumps(self.cfg.to_dict()),
        }
        save_model(self.out / name, self.model, self.meta, extra=extra)

    def _load_last(self) -> None:
        state, _, extra = load_checkpoint(self.out / "last.pt")
        self.model.load_state_dict(state)
        self.opt.load_state_dict(extra["optimizer"])
        self.plateau.load_state_dict(extra["plateau"])
        self.stopper.load_state_dict(extra["stopper"])
        self.gen.set_state(extra["gen_state"])
        torch.set_rng_state(extra["torch_rng"])
        self.start_epoch, self.step = int(extra["epoch"]) + 1, int(extra["step"])
        self.last_row = dict(extra.get("row") or {})

    # ---- loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        self._setup()
        cfg = self.cfg
        if self.resume:
            self._load_last()
        elif self.main:
            clear_run_folder(self.out, self.replaced)  # only now: the data loaded, the model was built
            self.out.mkdir(parents=True, exist_ok=True)
            import yaml

            atomic_write_text(self.out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        logger = CSVLogger(self.out / "results.csv") if self.main else None
        if logger is not None and self.resume:
            # results.csv and last.pt agree on where the run stands: rows past the checkpoint
            # (a stop after the row, before the next save) go, and a row the stop cut off returns
            logger.truncate(self.start_epoch)
            if self.last_row:
                logger.log(self.last_row)
        if self.main and cfg.amp == "auto":
            kind = "fp16" if self.device.type == "cuda" else "bf16"
            print(
                f"mixed precision (amp: auto): {kind if self.amp else 'off (no native bf16 on this CPU)'}", flush=True
            )
        steps = min(len(self.loader), cfg.max_steps_per_epoch or len(self.loader))
        total = steps * cfg.epochs
        for epoch in range(self.start_epoch, cfg.epochs):
            if self.stopper.should_stop:
                break
            t0 = time.perf_counter()
            train_loss, train_acc = self._train_epoch(epoch, steps, total)
            row = {
                "epoch": epoch,
                "lr": self.opt.param_groups[0]["lr"],
                "train_loss": train_loss,
                "train_acc": train_acc,
                "epoch_time_s": time.perf_counter() - t0,
            }
            stop = False
            if self.main:
                val = evaluate(
                    self.model,
                    self.splits["val"],
                    label_names(cfg.model.num_classes),
                    self.spec,
                    batch_size=cfg.eval_batch_size,
                    tta="flip" if cfg.eval_flip else "none",
                    device=self.device,
                )
                row.update(val_loss=val["nll"], val_acc=val["accuracy"], val_macro_f1=val["macro_f1"])
                improved = self.stopper.update(val["accuracy"])
                if cfg.scheduler == "plateau":
                    self.plateau.step(val["accuracy"])
                row["best_val_acc"] = self.stopper.best
                row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
                # best.pt before last.pt: a stop between the two repeats this epoch on resume (exactly)
                # rather than leaving a best.pt older than the best the stopper remembers
                if improved:
                    self._save("best.pt", epoch, row)
                if cfg.save_every_epoch:
                    save_model(
                        self.out / f"epoch{epoch + 1:03d}.safetensors", self.model, {**self.meta, "epoch": epoch}
                    )
                self._save("last.pt", epoch, row)
                logger.log(row)
                print(
                    f"epoch {epoch + 1}/{cfg.epochs} train_loss {train_loss:.4f} train_acc {train_acc:.4f} "
                    f"val_acc {val['accuracy']:.4f} val_loss {val['nll']:.4f} "
                    f"({row['epoch_time_s']:.0f}s){' *' if improved else ''}",
                    flush=True,
                )
                stop = self.stopper.should_stop
            if D.broadcast_object(stop):
                break
        return self._finish()

    def _train_epoch(self, epoch: int, steps: int, total: int) -> tuple[float, float]:
        cfg, spec = self.cfg, self.spec
        self.net.train()
        self.loader.set_epoch(epoch)
        bar = Progress(steps, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and self.main)
        loss_sum, correct, seen = 0.0, 0, 0
        for i, (xb, yb) in enumerate(self.loader):
            if i >= steps:
                break
            if cfg.scheduler != "plateau" or self.step < cfg.warmup_epochs * steps:
                for g in self.opt.param_groups:
                    g["lr"] = lr_at(cfg, self.step, total, steps)
            x = augment_batch(xb, spec, cfg.augment, self.gen)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x, y = x.to(self.device, non_blocking=True), yb.to(self.device)
            amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
            with torch.autocast(self.device.type, dtype=amp_dtype, enabled=self.amp):
                loss, logits = self.task.loss(self.net, x, y, self.gen)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            hard = y if y.dim() == 1 else y.argmax(1)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == hard).sum())
            seen += len(y)
            bar.update(i + 1, len(y) * self.world, loss=loss_sum / seen)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def _finish(self) -> dict[str, Any]:
        """Test once, with the checkpoint chosen on validation; draw the curves."""
        result: dict[str, Any] = {"run_dir": str(self.out)}
        if self.main and not self.cfg.test_at_end:
            print(
                f"best epoch: val_acc {self.stopper.best:.4f}; test split not evaluated (test_at_end: false)",
                flush=True,
            )
        elif self.main:
            ckpt = load_checkpoint(self.out / "best.pt")
            extra = ckpt.training
            best = model_from_state(ckpt.state, ckpt.card).to(self.device)
            test = evaluate(
                best,
                self.splits["test"],
                ckpt.card.labels,
                ckpt.card.preprocess,
                batch_size=self.cfg.eval_batch_size,
                device=self.device,
            )
            test = test.to_dict()
            test["best_epoch"] = int(extra["epoch"])
            atomic_write_text(self.out / "test_metrics.json", json.dumps(test, indent=2))
            result["test"] = test
            print(
                f"best epoch {test['best_epoch'] + 1}: val_acc {self.stopper.best:.4f}; "
                f"test ({self.splits['test'].name}) acc {test['accuracy']:.4f} "
                f"macro-F1 {test['macro_f1']:.4f}",
                flush=True,
            )
        D.barrier()
        D.cleanup()
        return result


# keyword of ``train`` -> config key: the CLI's flags, one for one (``resemotenet train --help``)
KEYWORDS = {
    "arch": "model.name",
    "num_classes": "model.num_classes",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "output": "output",
    "init_from": "init_from",
    "seed": "seed",
    "patience": "patience",
    "limit": "data.limit",
    "teacher": "teacher",
    "split_file": "data.split_file",
    "exclude_file": "data.exclude_file",
    "freeze_stem": "freeze_stem",
    "amp": "amp",
    "progress": "progress",
    "alpha": "distill_alpha",
    "temperature": "distill_temperature",
    "data_options": "data.options",
}


def train(
    config: TrainConfig | str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    *,
    data: str | None = None,
    set: list[str] | None = None,  # noqa: A002 - the CLI's --set KEY=VALUE
    **keywords: Any,
) -> dict[str, Any]:
    """Train a recipe; returns the run folder and the test metrics of the best checkpoint.

    ``config``: a ``TrainConfig``, a YAML recipe's path, or None (defaults). Every CLI flag is a
    keyword of the same name: ``data='fer2013:PATH'``, ``epochs``, ``lr``, ``init_from``, ...
    (``KEYWORDS``), and ``set=['augment.rotate=10']`` for any other key. With ``init_from`` and
    no recipe file, the run takes the checkpoint's architecture and preprocessing
    (``overrides_from_checkpoint``), so ``train(init_from='default', data='folder:site')`` fine-tunes
    the shipped model as it is. ``resume`` continues the run in ``output`` exactly; ``force``
    replaces a run already there."""
    unknown = sorted(set_ for set_ in keywords if set_ not in KEYWORDS)
    if unknown:
        raise ConfigError(f"unknown train keyword(s) {unknown}; valid: data, set, {', '.join(KEYWORDS)}")
    overrides = [f"{KEYWORDS[k]}={json.dumps(v)}" for k, v in keywords.items() if v is not None]
    if data:
        from ..data.loading import parse_spec

        name, path = parse_spec(data)
        overrides += [f"data.name={name}", f"data.root={json.dumps(path)}"]
    overrides += list(set or [])
    if isinstance(config, TrainConfig):
        cfg = with_overrides(config, overrides) if overrides else config
    else:
        adopted = overrides_from_checkpoint(keywords["init_from"]) if keywords.get("init_from") and not config else []
        cfg = load_config(config, adopted + overrides)
    return Trainer(cfg, resume, force).fit()


def overrides_from_checkpoint(path: str | Path) -> list[str]:
    """The config keys a checkpoint's card fixes: architecture and preprocessing."""
    card = load_checkpoint(path).card
    kwargs = {k: v for k, v in dict(card.arch_kwargs).items() if k not in ("num_classes", "in_chans")}
    return [f"model.name={json.dumps(card.arch)}", f"model.kwargs={json.dumps(kwargs)}"] + [
        f"preprocess.{k}={json.dumps(v)}" for k, v in card.preprocess.to_dict().items()
    ]
