"""Models by name: ``create_model("resemotenet_s", num_classes=7)``. Unknown names list the valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..utils.errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DEFAULTS: dict[str, dict[str, Any]] = {}


def register_model(name: str, **defaults: Any) -> Callable:
    """Register ``fn`` under ``name``; ``defaults`` are the variant's fixed keyword arguments."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ConfigError(f"model {name!r} is registered twice")
        _REGISTRY[name] = fn
        _DEFAULTS[name] = dict(defaults)
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_defaults(name: str) -> dict[str, Any]:
    _check(name)
    return dict(_DEFAULTS[name])


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(list_models())}")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``kwargs`` (num_classes, in_chans, ...) override its defaults."""
    _check(name)
    args = {**_DEFAULTS[name], **kwargs}
    try:
        return _REGISTRY[name](**args)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from exc
