"""Configuration dataclasses, YAML loading and validation (an unknown key is an error)."""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .utils.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """How a face crop becomes a model input. Travels with the weights (checkpoint, ONNX)."""

    # the weights a colour crop is reduced to grey with for a 1-channel model (ITU-R BT.601 luma,
    # as OpenCV's and PIL's grey): not a setting, one definition for preprocess and the page
    LUMA: ClassVar[tuple[float, float, float]] = (0.299, 0.587, 0.114)
    size: int = 64
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    # the resolution of the training faces when they were enlarged to ``size`` (FER2013: 48): a
    # larger crop is first reduced to it, so a sharp camera face carries no more detail than the
    # training faces did. None: crops go straight to ``size``.
    source_size: int | None = None

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError(f"preprocess.channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError("preprocess.mean and std need one value per channel")
        if self.size < 16:
            raise ConfigError(f"preprocess.size must be >= 16, got {self.size}")
        if self.source_size is not None and not 16 <= self.source_size <= self.size:
            raise ConfigError(
                f"preprocess.source_size must be between 16 and size ({self.size}), got {self.source_size}"
            )
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @property
    def reduce_to(self) -> int | None:
        """The side a larger crop is reduced to before it is enlarged to ``size`` (None: no reduction)."""
        return self.source_size if self.source_size is not None and self.source_size < self.size else None

    def to_dict(self) -> dict[str, Any]:
        d = {"size": self.size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std)}
        if self.source_size is not None:  # absent from older cards, which load unchanged
            d["source_size"] = self.source_size
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        return _build(cls, d, "preprocess")


@dataclass
class ModelConfig:
    name: str = "resemotenet_s"
    num_classes: int = 7
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """``name`` picks a reader (fer2013, ferplus, rafdb, affectnet, expw, folder)."""

    name: str = "fer2013"
    root: str = ""  # the dataset file or folder (required): --data NAME:PATH or data.root
    options: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.1
    split_seed: int = 0
    split_file: str | None = None
    exclude_file: str | None = None
    limit: int | None = None


@dataclass
class AugmentConfig:
    hflip: float = 0.5
    shift: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    erasing: float = 0.0
    mixup: float = 0.0
    # camera-like degradations (each: the probability a face gets it, then its largest strength)
    blur: float = 0.0
    blur_sigma: float = 2.0  # Gaussian sigma in pixels of a 48-pixel face, drawn from [0, blur_sigma]
    noise: float = 0.0
    noise_sigma: float = 24.0  # Gaussian noise sigma in grey levels, drawn from [0, noise_sigma]
    gamma: float = 0.0  # log-gamma drawn from [-gamma, gamma] (dim or washed-out light)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    label_smoothing: float = 0.0
    balance: str = "none"
    balance_power: float = 1.0  # class weight = (n / (k * count)) ** power: 1 inverse frequency, 0.5 its square root
    amp: bool | str = False  # true, false, or "auto": bf16 where the CPU computes it natively (fp16 on CUDA)
    channels_last: bool = True
    patience: int = 0
    seed: int = 0
    output: str = "runs/train"
    init_from: str | None = None
    freeze_stem: bool = False
    eval_batch_size: int = 256
    eval_flip: bool = False
    teacher: str | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0
    # face-api's FaceExpressionNet (@vladmandic/face-api@1.7.15's model folder) as a second opinion:
    # its probabilities at temperature T blended into the training targets at a low weight
    # (engine/soft_targets.py); computed once per training set, then read from the cache
    faceapi_teacher: str | None = None
    faceapi_weight: float = 0.2
    faceapi_temperature: float = 4.0
    progress: bool = True
    max_steps_per_epoch: int | None = None
    test_at_end: bool = True  # False: never evaluate on the test split (ablations select and report on validation only)
    save_every_epoch: bool = False  # also keep epochNNN.safetensors (weights only), e.g. for `resemotenet average`

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["preprocess"] = self.preprocess.to_dict()
        return d


CHOICES = {
    "optimizer": ("sgd", "adamw"),
    "scheduler": ("cosine", "plateau", "onecycle", "constant"),
    "balance": ("none", "sampler", "loss"),
}


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in d.items():
        sub = _nested.get((cls.__name__, k))
        if sub is not None and not isinstance(v, dict):
            raise ConfigError(
                f"{f'{where}.{k}'.removeprefix('config.')}: expected a mapping of keys "
                f"({', '.join(f.name for f in fields(sub))}), got {v!r}"
            )
        if sub is not None:
            v = sub.from_dict(v) if sub is PreprocessSpec else _build(sub, v, f"{where}.{k}")
        else:
            v = _typed(f"{where}.{k}".removeprefix("config."), v, hints[k])
        kwargs[k] = v
    return cls(**kwargs)


def _typed(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against a dataclass field's type (and converted: int -> float, list ->
    tuple), or a ``ConfigError`` naming the key, the expected type and the value."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _typed(key, value, inner[0]) if len(inner) == 1 else value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            item = args[0] if args else float
            if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
                raise ConfigError(f"{key}: expected 2 numbers, got {value!r}")
            return tuple(_typed(key, v, item) for v in value)
    elif origin is dict or hint is dict:
        if isinstance(value, dict):
            return value
    else:
        return value
    raise ConfigError(f"{key}: expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "a list of numbers"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


_nested: dict[tuple[str, str], type] = {
    ("TrainConfig", "model"): ModelConfig,
    ("TrainConfig", "data"): DataConfig,
    ("TrainConfig", "preprocess"): PreprocessSpec,
    ("TrainConfig", "augment"): AugmentConfig,
}


def validate(cfg: TrainConfig) -> TrainConfig:
    for key, valid in CHOICES.items():
        if getattr(cfg, key) not in valid:
            raise ConfigError(f"{key}={getattr(cfg, key)!r} is not one of {list(valid)}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise ConfigError("epochs, batch_size and lr must be positive")
    if cfg.amp not in (True, False, "auto"):
        raise ConfigError(f"amp must be true, false or auto, got {cfg.amp!r}")
    if cfg.balance_power < 0:
        raise ConfigError(f"balance_power must be >= 0, got {cfg.balance_power}")
    if not 0.0 <= cfg.faceapi_weight <= 1.0 or cfg.faceapi_temperature <= 0:
        raise ConfigError(
            f"faceapi_weight must lie in [0, 1] and faceapi_temperature be > 0, got "
            f"{cfg.faceapi_weight} and {cfg.faceapi_temperature}"
        )
    if cfg.model.num_classes not in (7, 8):
        raise ConfigError(f"model.num_classes must be 7 or 8, got {cfg.model.num_classes}")
    return cfg


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    return validate(_build(TrainConfig, d, "config"))


def with_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """A copy of ``cfg`` with ``key.sub=value`` overrides applied (and validated)."""
    d = cfg.to_dict()
    _apply(d, overrides)
    return config_from_dict(d)


def _apply(d: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        node = d
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a group of keys")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: the value is not valid YAML") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML recipe and apply ``key.sub=value`` overrides (values parsed as YAML).

    Relative data paths in the file (``data.root``, split and exclude files, reader options that
    name files) are taken relative to the file's own folder."""

    d: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            d = yaml.load(p.read_text(), Loader=_UniqueKeyLoader) or {}
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(d, dict):
            raise ConfigError(f"{p}: expected a mapping of config keys, got {type(d).__name__}")
        _resolve_data_paths(d, p.parent)
    _apply(d, overrides or [])
    return config_from_dict(d)


# data paths inside a config file are relative to the file's folder, so a recipe works from
# any working directory (output and init_from stay relative to where the command runs).
DATA_PATH_KEYS = ("root", "split_file", "exclude_file")
DATA_PATH_OPTIONS = ("ferplus", "fer2013", "images", "labels")


def _resolve_data_paths(d: dict[str, Any], base: Path) -> None:
    data = d.get("data")
    if not isinstance(data, dict):
        return

    def resolve(v: Any) -> Any:
        return str((base / v).resolve()) if isinstance(v, str) and v and not Path(v).is_absolute() else v

    for key in DATA_PATH_KEYS:
        if key in data:
            data[key] = resolve(data[key])
    options = data.get("options")
    if isinstance(options, dict):
        for key in DATA_PATH_OPTIONS:
            if key in options:
                options[key] = resolve(options[key])


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)
