"""Lazy matplotlib import for the modules that draw (an optional extra)."""

from __future__ import annotations

from .errors import MissingExtraError


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or a MissingExtraError naming the extra."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("matplotlib", "plot") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
