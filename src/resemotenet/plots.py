"""Plots as PNG files (matplotlib, an optional extra: ``pip install 'resemotenet[plot]'``)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .metrics import reliability
from .utils.mpl import pyplot


def training_curves(results_csv: str | Path, out: str | Path) -> Path:
    """Loss and accuracy per epoch, train and validation."""
    plt = pyplot()
    rows = list(csv.DictReader(open(results_csv)))
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [float(r["train_loss"]) for r in rows], label="train")
    a.plot(ep, [float(r["val_loss"]) for r in rows], label="validation")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.plot(ep, [float(r["train_acc"]) for r in rows], label="train")
    b.plot(ep, [float(r["val_acc"]) for r in rows], label="validation")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def confusion_matrix_png(cm: Sequence[Sequence[int]], labels: Sequence[str], out: str | Path) -> Path:
    """Counts and row-normalised confusion matrices side by side."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, mat, title, fmt in ((axes[0], cm, "counts", "{:.0f}"), (axes[1], norm, "row-normalised", "{:.2f}")):
        ax.imshow(mat, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set(xlabel="predicted", ylabel="true", title=title)
        hi = mat.max() / 2 if mat.size else 0
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                ax.text(
                    j,
                    i,
                    fmt.format(mat[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if mat[i, j] > hi else "black",
                )
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def reliability_png(probs: np.ndarray, targets: np.ndarray, out: str | Path, bins: int = 15) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal."""
    plt = pyplot()
    r = reliability(probs, targets, bins)
    centers = (np.arange(bins) + 0.5) / bins
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.bar(centers, r["accuracy"], width=1 / bins, edgecolor="k", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "r--", label="perfect calibration")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
