"""Self-describing checkpoints: weights plus model name, config, preprocessing and labels.

Two containers:
- ``.safetensors``: weights only (no code can run on load) with our metadata as JSON.
- ``.pt``: a plain dict of tensors and primitives (training state included), always loaded with
  ``torch.load(weights_only=True)``: never unpickles arbitrary objects.
The official ResEmoteNet release (a bare state_dict, or ``{"model_state_dict": ...}``) is
recognised by its keys, loaded with ``strict=True`` and its class order remapped to ours.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..card import ModelCard
from ..config import PreprocessSpec
from ..labels import EMOTIONS7, OFFICIAL_RESEMOTENET_ORDER, remap_indices
from ..utils.errors import CheckpointError, ConfigError
from ..utils.io import atomic_write
from .registry import create_model

FORMAT = "resemotenet/1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "default.safetensors"
# Weights inside the package, by name: "default" (96x96, the more accurate) and "fast" (48x48, ~3.5x
# less compute per face; RECIPES.md has both recipes and accuracies).
SHIPPED = {"default": DEFAULT_WEIGHTS, "fast": DEFAULT_WEIGHTS.with_name("fast.safetensors")}


def resolve_weights(path: str | Path | None) -> Path:
    """The file behind a shipped name ('default', 'fast'; None = 'default'), else ``path``."""
    key = "default" if path is None else str(path)
    if key in SHIPPED:
        if not SHIPPED[key].is_file():
            raise CheckpointError(f"{SHIPPED[key]}: the shipped {key!r} weights are not installed")
        return SHIPPED[key]
    return Path(path)  # type: ignore[arg-type]


# The paper's preprocessing: 64x64 grayscale copied to 3 channels, ImageNet statistics.
PAPER_PREPROCESS = PreprocessSpec()


def make_meta(
    model_name: str,
    model_kwargs: dict[str, Any],
    preprocess: PreprocessSpec,
    labels: tuple[str, ...] | list[str],
    temperature: float = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata dict of a new model card (``ModelCard.to_meta``); card fields such as
    ``training_data`` or ``framing`` may be passed in ``extra``."""
    from .._version import __version__

    meta = {
        "format": FORMAT,
        "model": model_name,
        "model_kwargs": dict(model_kwargs),
        "preprocess": preprocess.to_dict(),
        "labels": list(labels),
        "temperature": float(temperature),
        "package_version": __version__,
        **extra,
    }
    return ModelCard.from_meta(meta).to_meta()


def save_model(
    path: str | Path, model: nn.Module, meta: dict[str, Any], half: bool = False, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` with ``meta`` atomically; ``.safetensors`` or ``.pt`` by extension."""
    state = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        return atomic_write(path, lambda p: save_file(state, str(p), metadata={"resemotenet": json.dumps(meta)}))
    payload = {"resemotenet": json.dumps(meta), "model": state, **(extra or {})}
    return atomic_write(path, lambda p: torch.save(payload, p))


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


@dataclass(frozen=True)
class Checkpoint:
    """What a weights file holds: the tensors, the model card (parsed once, here) and, for a
    training run's ``.pt``, its training state (optimizer, epoch, ...).

    Unpacking it as ``state, meta, extra = load_checkpoint(p)`` (the older spelling) still works for
    one release and gives the card as its metadata dict."""

    state: dict[str, torch.Tensor]
    card: ModelCard
    training: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        yield self.state
        yield self.card.view()
        yield self.training

    def __getitem__(self, i: int) -> Any:
        return tuple(self)[i]


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The ``Checkpoint`` (weights, card, training state) of a file or a shipped name ('default', 'fast')."""
    return Checkpoint(*_load(path))


def _load(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelCard, dict[str, Any]]:
    path = resolve_weights(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # neither torch's zip archive nor a pickle
        raise CheckpointError(f"{path}: not a checkpoint file (neither a torch archive nor safetensors)")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip files, foreign objects
        raise CheckpointError(f"{path}: {_refusal(exc)}") from exc
    if isinstance(obj, dict) and "resemotenet" in obj:
        extra = {k: v for k, v in obj.items() if k not in ("resemotenet", "model")}
        if not isinstance(obj.get("model"), dict):
            raise CheckpointError(f"{path}: holds resemotenet metadata but no weights ('model' entry)")
        return obj["model"], _parse_meta(path, obj["resemotenet"]), extra
    return _official(path, obj), _official_meta(), {}


def _refusal(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in words that advise nothing unsafe."""
    import pickle
    import zipfile

    text = str(exc)
    if "Weights only load failed" in text or "Unsupported global" in text or "weights_only" in text:
        return (
            "refused: the file holds Python objects besides tensors, and checkpoints are only ever "
            "loaded without running pickled code; save a plain state_dict, or .safetensors, instead"
        )
    if isinstance(exc, (zipfile.BadZipFile, EOFError)) or "zip" in text.lower() or "EOF" in text:
        return "not a loadable checkpoint (truncated or not a torch file)"
    if isinstance(exc, (KeyError, ValueError, UnicodeDecodeError, pickle.UnpicklingError)):  # text, another format
        return "not a checkpoint file (neither a torch archive nor safetensors)"
    return f"not a loadable checkpoint ({type(exc).__name__})"


def _parse_meta(path: Path, raw: Any) -> ModelCard:
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: its resemotenet metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its resemotenet metadata is not a JSON object")
    return ModelCard.from_meta(meta, str(path))  # the one parse: required fields, types


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelCard, dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta_raw = (f.metadata() or {}).get("resemotenet")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if meta_raw is None:
        return _official(path, state), _official_meta(), {}
    return state, _parse_meta(path, meta_raw), {}


def _official(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """Accept the official release layout and reorder its class rows to ours."""
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or "fc4.weight" not in obj or "se.fc.0.weight" not in obj:
        raise CheckpointError(
            f"{path}: not a ResEmoteNet checkpoint (no resemotenet metadata, and not the official state_dict layout)"
        )
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    order = remap_indices(OFFICIAL_RESEMOTENET_ORDER, EMOTIONS7)
    for key in ("fc4.weight", "fc4.bias"):
        state[key] = state[key][order]
    return state


def _official_meta() -> ModelCard:
    return ModelCard.from_meta(
        make_meta("resemotenet", {"num_classes": 7}, PAPER_PREPROCESS, EMOTIONS7, source="official")
    )


def model_from_state(
    state: dict[str, torch.Tensor], card: ModelCard | dict[str, Any], where: str = "checkpoint"
) -> nn.Module:
    """The model a card describes, with ``state`` loaded (strict). ``model.card`` is the card;
    ``model.pretrained_cfg`` a read-only view of its metadata (timm's name)."""
    if not isinstance(card, ModelCard):
        card = ModelCard.from_meta(card, where)
    try:
        model = create_model(card.arch, **dict(card.arch_kwargs))
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{where}: cannot build its model ({exc})") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{where}: weights do not fit model {card.arch!r} ({first[:200]})") from exc
    attach_card(model, card)
    return model


def attach_card(model: nn.Module, card: ModelCard) -> nn.Module:
    """Give a model its card: ``model.card``, and ``pretrained_cfg`` as a read-only view of it."""
    model.card = card  # type: ignore[attr-defined]
    model.pretrained_cfg = card.view()  # type: ignore[attr-defined]
    return model


def load_model(path: str | Path | None = None) -> nn.Module:
    """Load a model ready for inference (eval mode). No argument: the shipped default model;
    'fast': the shipped 48x48 model.

    ``model.pretrained_cfg`` holds the metadata: labels, preprocessing, temperature.
    """
    path = resolve_weights(path)
    ckpt = load_checkpoint(path)
    return model_from_state(ckpt.state, ckpt.card, str(path)).eval()


def export_safetensors(
    checkpoint: str | Path, output: str | Path | None = None, half: bool = False, force: bool = False
) -> tuple[Path, ModelCard]:
    """A training checkpoint -> an inference file: weights and card, no optimizer state
    (``output`` default: the checkpoint's name with ``.safetensors``; fp16 with ``half``)."""
    from ..utils.io import check_output

    dst = check_output(output or Path(checkpoint).with_suffix(".safetensors"), force=force)
    ckpt = load_checkpoint(checkpoint)
    model = model_from_state(ckpt.state, ckpt.card, str(checkpoint))
    save_model(dst, model, ckpt.card.to_meta(), half=half)
    return dst, ckpt.card


def write_card(path: str | Path, card: ModelCard) -> Path:
    """Rewrite a ``.safetensors`` weights file with ``card`` as its metadata (weights unchanged,
    dtype kept; written atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: the card is rewritten in .safetensors files only")
    state = _load_safetensors(path)[0]
    return atomic_write(path, lambda p: save_file(state, str(p), metadata={"resemotenet": card.to_json()}))


def card_of(model: nn.Module) -> ModelCard:
    """The model card of a loaded model (built from ``pretrained_cfg`` where only that is set)."""
    card = getattr(model, "card", None)
    if card is None:
        meta = getattr(model, "pretrained_cfg", None)
        if not meta:
            raise CheckpointError(
                "the model has no model card (labels and preprocessing); load it with resemotenet.load_model"
            )
        card = ModelCard.from_meta(meta, "model")
    return card


def preprocess_of(model: nn.Module) -> PreprocessSpec:
    return card_of(model).preprocess


def average_states(paths: list[str | Path]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Uniform average of the weights of several checkpoints of one model (weight averaging along
    a training run, as in SWA, or a "model soup"). Floating tensors are averaged in fp32; integer
    buffers (batch-norm counters) are taken from the last file. The metadata is the last file's,
    with the sources listed under ``averaged_from``."""
    if len(paths) < 2:
        raise ConfigError(f"averaging needs at least 2 checkpoints, got {len(paths)}")

    total, ref = {}, None
    for p in paths:
        ckpt = load_checkpoint(p)
        state, card = ckpt.state, ckpt.card
        if ref is None:
            ref = card.identity()
        elif card.identity() != ref:
            raise CheckpointError(
                f"{p}: model, labels or preprocessing differ from {paths[0]}; "
                "only checkpoints of one model can be averaged"
            )
        elif set(state) != set(total) or any(state[k].shape != total[k].shape for k in total):
            raise CheckpointError(f"{p}: weights do not match {paths[0]}")
        for k, v in state.items():
            if not v.is_floating_point():
                total[k] = v.clone()
            elif k in total:
                total[k] += v.float()
            else:
                total[k] = v.float().clone()
    avg = {k: v / len(paths) if v.is_floating_point() else v for k, v in total.items()}
    return avg, card.with_(averaged_from=tuple(str(p) for p in paths), epoch=None).to_meta()
