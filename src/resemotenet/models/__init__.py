"""Models: the registry, ResEmoteNet and its ablations, and self-describing checkpoints."""

from .checkpoint import load_checkpoint, load_model, save_model
from .registry import create_model, list_models, model_defaults, register_model
from .resemotenet import ResEmoteNet

# The official architecture, its compact width and the paper's ablations. Each variant is a
# set of constructor arguments, never a copied file.
_VARIANTS = {
    "": {},
    "_nose": {"se": False},
    "_nores": {"residual": False},
    "_plain": {"se": False, "residual": False},
}
_WIDTHS = {"resemotenet": 1.0, "resemotenet_m": 0.5, "resemotenet_s": 0.25, "resemotenet_t": 0.125}
for _base, _w in _WIDTHS.items():
    for _suffix, _kw in _VARIANTS.items():
        register_model(_base + _suffix, width=_w, **_kw)(ResEmoteNet)

__all__ = [
    "ResEmoteNet",
    "create_model",
    "list_models",
    "model_defaults",
    "register_model",
    "save_model",
    "load_model",
    "load_checkpoint",
]
