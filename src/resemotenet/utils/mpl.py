"""Lazy matplotlib import for the modules that draw (an optional extra)."""

from __future__ import annotations

from pathlib import Path

from .errors import import_extra


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or a MissingExtraError naming the extra."""
    matplotlib = import_extra("matplotlib", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out, legend_axes=()) -> Path:
    """Grid and legend on ``legend_axes``, tight layout, write ``out`` as PNG, free the figure."""
    plt = pyplot()
    for ax in legend_axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
