"""Classification metrics on numpy arrays: accuracy, balanced accuracy, per-class precision /
recall / F1, macro-F1, confusion matrix, mean cross-entropy (NLL) and expected calibration error."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    idx = np.asarray(y_true) * num_classes + np.asarray(y_pred)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def reliability(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> dict[str, np.ndarray]:
    """Per confidence bin: mean confidence, accuracy and count (equal-width bins on [0, 1])."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    which = np.minimum((conf * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    sum_conf = np.bincount(which, weights=conf, minlength=bins)
    sum_acc = np.bincount(which, weights=correct, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "confidence": np.where(count > 0, sum_conf / count, 0.0),
            "accuracy": np.where(count > 0, sum_acc / count, 0.0),
            "count": count,
        }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    r = reliability(probs, y_true, bins)
    n = max(1, len(y_true))
    return float(np.sum(r["count"] / n * np.abs(r["accuracy"] - r["confidence"])))


def nll(probs: np.ndarray, y_true: np.ndarray) -> float:
    p = probs[np.arange(len(y_true)), y_true]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean()) if len(y_true) else float("nan")


def classification_metrics(
    probs: np.ndarray, y_true: np.ndarray, labels: tuple[str, ...] | list[str], bins: int = 15
) -> dict[str, Any]:
    """Every metric the toolkit reports, as a JSON-ready dict."""
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    k = len(labels)
    pred = probs.argmax(1)
    cm = confusion_matrix(y_true, pred, k)
    pc = per_class(cm)
    present = pc["support"] > 0
    return {
        "n": int(len(y_true)),
        "accuracy": float((pred == y_true).mean()) if len(y_true) else float("nan"),
        "balanced_accuracy": float(pc["recall"][present].mean()) if present.any() else float("nan"),
        "macro_f1": float(pc["f1"][present].mean()) if present.any() else float("nan"),
        "nll": nll(probs, y_true),
        "ece": expected_calibration_error(probs, y_true, bins),
        "labels": list(labels),
        "per_class": {
            name: {
                "precision": float(pc["precision"][i]),
                "recall": float(pc["recall"][i]),
                "f1": float(pc["f1"][i]),
                "support": int(pc["support"][i]),
            }
            for i, name in enumerate(labels)
        },
        "confusion": cm.tolist(),
    }


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
