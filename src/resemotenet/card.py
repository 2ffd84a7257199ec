"""The model card: one typed, frozen record that travels with every weights file.

A checkpoint's, a safetensors file's and an ONNX file's metadata hold the same JSON (the card's
``to_meta()``), so ``load_model(path)`` needs nothing but the file. The card says what the model
is (architecture, labels), how a face becomes its input (``preprocess``, ``framing``, and the one
``transforms()`` every consumer calls), how far to trust it (calibrated ``temperature``, the
recommended ``threshold`` for handing a face to a person, measured ``metrics`` with split and
date) and where it came from (training data, recipe). Files written before the card existed
load too: missing fields take their defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .config import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec
from .utils.errors import CheckpointError

FORMAT = "resemotenet/1"


class MetaView(dict):
    """A card's metadata as a read-only dict (``model.pretrained_cfg``, ``backend.meta``): for
    readers used to timm's dict; the card itself is what the package reads and writes."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("this metadata is a read-only view of the model card; make a new card with card.with_(...)")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return MetaView, (dict(self),)


@dataclass(frozen=True)
class Framing:
    """How a detector's face box becomes the crop the model saw in training.

    ``margin``: the box grows by this fraction of its side on every edge; ``square``: the crop is
    made square around the box centre; ``shift_y``: the centre moves down by this fraction of
    the side (FER2013's crops run from the brows to the chin); ``align``: faces whose eye
    landmarks tilt are rotated level first. ``detector_margins`` overrides ``margin`` for named
    detectors whose boxes sit tighter or looser than FER2013's crops (``benchmarks/framing.py``
    measures it)."""

    margin: float = 0.2
    square: bool = True
    shift_y: float = 0.0
    align: bool = False
    detector_margins: Mapping[str, float] = field(default_factory=dict)

    def margin_for(self, detector: str | None) -> float:
        return float(self.detector_margins.get(detector, self.margin)) if detector else self.margin

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detector_margins": dict(self.detector_margins)}


@dataclass(frozen=True)
class Metric:
    """One measured figure: ``value`` of ``name`` on ``split`` of ``data``, with its date and command."""

    name: str
    value: float
    split: str
    data: str = ""
    date: str = ""
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelCard:
    arch: str
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    framing: Framing = field(default_factory=Framing)
    temperature: float = 1.0
    threshold: float | None = None  # recommended --min-confidence (chosen on validation data)
    training_data: str = ""
    recipe: str = ""
    parameters: int | None = None
    metrics: tuple[Metric, ...] = ()
    package_version: str = ""
    explain_layer: str | None = None  # the layer Grad-CAM reads (None: the model's last block)
    epoch: int | None = None  # the training epoch these weights come from, when one run wrote them
    averaged_from: tuple[str, ...] = ()  # the checkpoints a weight average was made of
    extra: Mapping[str, Any] = field(default_factory=dict)  # anything else the file carried

    # ---- the one preprocessing -----------------------------------------------------------------
    def transforms(self) -> Any:
        """The callable that turns uint8 face crops into this model's input batch."""
        from .preprocess import FaceTransform

        return FaceTransform(self.preprocess)

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        """The metadata dict stored in files (keys of the pre-card format kept as they were)."""
        meta = {
            **dict(self.extra),
            "format": FORMAT,
            "model": self.arch,
            "model_kwargs": dict(self.arch_kwargs),
            "preprocess": self.preprocess.to_dict(),
            "labels": list(self.labels),
            "temperature": float(self.temperature),
            "framing": self.framing.to_dict(),
            "package_version": self.package_version,
        }
        optional = {
            "threshold": self.threshold,
            "training_data": self.training_data,
            "recipe": self.recipe,
            "parameters": self.parameters,
            "explain_layer": self.explain_layer,
            "epoch": self.epoch,
            "averaged_from": list(self.averaged_from) or None,
        }
        meta.update({k: v for k, v in optional.items() if v not in (None, "")})
        if self.metrics:
            meta["metrics"] = [m.to_dict() for m in self.metrics]
        return meta

    def view(self) -> MetaView:
        """``to_meta()`` as a read-only dict."""
        return MetaView(self.to_meta())

    def to_json(self) -> str:
        return json.dumps(self.to_meta(), sort_keys=True)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], where: str = "metadata") -> ModelCard:
        """A card from a file's metadata dict (old files: missing fields take their defaults)."""
        missing = [k for k in ("model", "labels", "preprocess") if k not in meta]
        if missing:
            raise CheckpointError(
                f"{where}: its metadata lacks {', '.join(repr(k) for k in missing)}; "
                f"it was not written by resemotenet's save_model or export"
            )
        try:
            framing = Framing(
                **{k: v for k, v in dict(meta.get("framing") or {}).items() if k in {f.name for f in fields(Framing)}}
            )
            metrics = tuple(Metric(**m) for m in meta.get("metrics") or ())
            known = {
                "format",
                "model",
                "model_kwargs",
                "preprocess",
                "labels",
                "temperature",
                "framing",
                "threshold",
                "training_data",
                "recipe",
                "parameters",
                "metrics",
                "package_version",
                "explain_layer",
                "epoch",
                "averaged_from",
            }
            return cls(
                arch=str(meta["model"]),
                labels=tuple(meta["labels"]),
                preprocess=PreprocessSpec.from_dict(dict(meta["preprocess"])),
                arch_kwargs=dict(meta.get("model_kwargs") or {}),
                framing=framing,
                temperature=float(meta.get("temperature", 1.0)),
                threshold=None if meta.get("threshold") is None else float(meta["threshold"]),
                training_data=str(meta.get("training_data", "") or meta.get("dataset", "") or ""),
                recipe=str(meta.get("recipe", "") or ""),
                parameters=None if meta.get("parameters") is None else int(meta["parameters"]),
                metrics=metrics,
                package_version=str(meta.get("package_version", "")),
                explain_layer=None if meta.get("explain_layer") is None else str(meta["explain_layer"]),
                epoch=None if meta.get("epoch") is None else int(meta["epoch"]),
                averaged_from=tuple(str(p) for p in meta.get("averaged_from") or ()),
                extra={k: v for k, v in meta.items() if k not in known},
            )
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: malformed model card ({exc})") from exc

    @classmethod
    def from_json(cls, text: str, where: str = "metadata") -> ModelCard:
        try:
            return cls.from_meta(json.loads(text), where)
        except ValueError:
            raise CheckpointError(f"{where}: its resemotenet metadata is not valid JSON") from None

    @property
    def name(self) -> str:
        """The architecture's registry name (what a listing or a page shows for the model)."""
        return self.arch

    def identity(self) -> tuple:
        """What must agree for two weights files to be the same model (averaging, promoting)."""
        return (
            self.arch,
            json.dumps(dict(self.arch_kwargs), sort_keys=True),
            self.labels,
            json.dumps(self.preprocess.to_dict(), sort_keys=True),
        )

    def with_(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed (the card itself is frozen)."""
        return replace(self, **changes)

    # ---- for people ----------------------------------------------------------------------------
    def describe(self) -> str:
        """The card as ``resemotenet info MODEL`` prints it."""
        p, f = self.preprocess, self.framing
        lines = [
            f"architecture   {self.arch} {dict(self.arch_kwargs) or ''}".rstrip(),
            f"parameters     {self.parameters:,}" if self.parameters else "parameters     (not recorded)",
            f"labels         {', '.join(self.labels)}",
            f"input          {p.size}x{p.size}, {p.channels} channel(s), mean {list(p.mean)}, std {list(p.std)}"
            + (f"; larger crops reduced to {p.reduce_to}x{p.reduce_to} first" if p.reduce_to else ""),
            f"framing        margin {f.margin}"
            + "".join(f" ({k}: {v})" for k, v in dict(f.detector_margins).items())
            + f", {'square' if f.square else 'box-shaped'}, shift_y {f.shift_y}, "
            f"{'eyes levelled' if f.align else 'no alignment'}",
            f"temperature    {self.temperature:.4g}",
            f"threshold      {self.threshold if self.threshold is not None else '(none recommended)'}",
            f"training data  {self.training_data or '(not recorded)'}",
            f"recipe         {self.recipe or '(not recorded)'}",
        ]
        if self.metrics:
            lines.append("measured")
            for m in self.metrics:
                lines.append(
                    f"  {m.name} {m.value:.4f} on {m.split} of {m.data or '?'} ({m.date or 'undated'})"
                    + (f": {m.command}" if m.command else "")
                )
        else:
            lines.append("measured       (no figures recorded in the file; see RECIPES.md)")
        if self.package_version:
            lines.append(f"written by     resemotenet {self.package_version}")
        return "\n".join(lines)


# ---- metadata of files written by other tools ----------------------------------------------------
def meta_from_props(props: Mapping[str, str], where: str, key: str = "resemotenet") -> dict[str, Any]:
    """An ONNX file's metadata: our JSON under ``key``, or the separate readable keys
    (``labels``, ``preprocess``) some tools keep."""
    try:
        if key in props:
            return dict(json.loads(props[key]))
        return {k: json.loads(props[k]) for k in ("labels", "preprocess") if k in props}
    except ValueError as exc:
        raise CheckpointError(f"{where}: metadata is not valid JSON ({exc})") from exc


def complete_meta(
    meta: dict[str, Any],
    where: str,
    name: str,
    shape: tuple[int | None, ...],
    labels: Sequence[str] | str | None = None,
    size: int | None = None,
    channels: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A partial card (a bare ONNX file's) filled from the caller's shortcuts and the input
    ``shape`` (C, S, S); names whatever is still missing."""
    if labels is not None:
        meta["labels"] = [s.strip() for s in labels.split(",")] if isinstance(labels, str) else list(labels)
    pre = dict(meta.get("preprocess") or {})
    given = {"size": size, "channels": channels, "mean": mean, "std": std}
    pre.update({k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in given.items() if v is not None})
    if "channels" not in pre and shape and shape[0] is not None:
        pre["channels"] = shape[0]
    if "size" not in pre and len(shape) == 3 and shape[1] is not None and shape[1] == shape[2]:
        pre["size"] = shape[1]
    if pre.get("channels") == 3:  # the paper's statistics are the documented default for RGB input
        pre.setdefault("mean", list(IMAGENET_MEAN))
        pre.setdefault("std", list(IMAGENET_STD))
    missing = [k for k in ("labels",) if not meta.get(k)] + [
        k for k in ("size", "channels", "mean", "std") if k not in pre
    ]
    if missing:
        raise CheckpointError(
            f"{where}: no resemotenet metadata for {', '.join(missing)}; export the model with "
            f"'resemotenet export' (or pass {', '.join(missing)} to OnnxBackend in Python)"
        )
    meta["preprocess"] = PreprocessSpec.from_dict(pre).to_dict()
    meta.setdefault("temperature", 1.0)
    meta.setdefault("model", name)
    return meta
