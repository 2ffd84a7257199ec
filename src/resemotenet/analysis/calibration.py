"""Calibration and human-in-the-loop thresholds.

Temperature scaling (Guo et al. 2017) divides the logits by one scalar T fitted on the
validation split; it changes confidences, never the predicted class. The fitted T is stored in
the checkpoint's metadata, where the predictor and the evaluator already apply it.

Risk-coverage: keep the faces whose top probability reaches a threshold and hand the rest to a
person. The curve shows accuracy on the kept faces against the share kept; the recommended
``--min-confidence`` is the lowest threshold whose kept accuracy reaches a target on the
validation split (never on the test split, which only reports what that choice gives).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..card import ModelCard
from ..config import DataConfig
from ..data import load_splits
from ..data.dataset import Split, materialize
from ..engine.evaluator import predict_probs, restrict
from ..metrics import expected_calibration_error, nll, softmax
from ..models.checkpoint import load_checkpoint, model_from_state, save_model
from ..utils.errors import CheckpointError, DataError

T_RANGE = (0.05, 20.0)


def nll_at(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    return nll(softmax(logits, temperature), y)


def fit_temperature(logits: np.ndarray, y: np.ndarray, tol: float = 1e-4) -> float:
    """T minimising the NLL of ``softmax(logits / T)``. The NLL is convex in 1/T, so a
    golden-section search over 1/T finds the global minimum (within ``T_RANGE``)."""
    logits, y = np.asarray(logits, np.float64), np.asarray(y, np.int64)
    if len(y) == 0:
        raise DataError("cannot fit a temperature on an empty split")
    lo, hi = 1.0 / T_RANGE[1], 1.0 / T_RANGE[0]
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll_at(logits, y, 1 / a), nll_at(logits, y, 1 / b)
    while hi - lo > tol:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll_at(logits, y, 1 / a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll_at(logits, y, 1 / b)
    return float(2.0 / (lo + hi))


def risk_coverage(probs: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """For each distinct confidence threshold (descending): share of faces kept (coverage),
    accuracy on them, and the share handed to a person (1 - coverage)."""
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    conf, correct = conf[order], correct[order]
    last = np.r_[np.flatnonzero(conf[1:] != conf[:-1]), len(conf) - 1]  # keep ties together
    kept = last + 1
    acc = np.cumsum(correct)[last] / kept
    cov = kept / max(1, len(conf))
    return {
        "threshold": conf[last].tolist(),
        "coverage": cov.tolist(),
        "accuracy": acc.tolist(),
        "deferred": (1 - cov).tolist(),
    }


def recommend_threshold(probs: np.ndarray, y: np.ndarray, target: float, min_kept: int = 20) -> dict[str, Any]:
    """The lowest confidence threshold whose kept accuracy reaches ``target`` (most faces kept),
    counting only thresholds that keep at least ``min_kept`` faces."""
    rc = risk_coverage(probs, y)
    n = len(y)
    ok = [
        i for i, (a, c) in enumerate(zip(rc["accuracy"], rc["coverage"])) if a >= target and c * n >= min(min_kept, n)
    ]
    if not ok:
        return {
            "target_accuracy": target,
            "min_confidence": None,
            "note": f"no threshold reaches accuracy {target:.3f} on {n} faces",
        }
    i = max(ok, key=lambda j: rc["coverage"][j])
    return {
        "target_accuracy": target,
        "min_confidence": rc["threshold"][i],
        "coverage": rc["coverage"][i],
        "accuracy": rc["accuracy"][i],
        "deferred": rc["deferred"][i],
    }


def apply_threshold(probs: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Coverage and kept accuracy of ``threshold`` on another split (e.g. the test split)."""
    keep = probs.max(1) >= threshold
    acc = float((probs[keep].argmax(1) == y[keep]).mean()) if keep.any() else float("nan")
    return {"coverage": float(keep.mean()) if len(y) else float("nan"), "accuracy": acc}


def _logits(model: Any, split: Split, card: ModelCard, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities at T=1 (equal to the logits up to a per-row constant, which softmax
    ignores) restricted to the labels the model and the data share."""
    spec = card.preprocess
    probs = predict_probs(model, materialize(split, spec.size, reduce_to=spec.reduce_to), spec, 1.0, batch_size)
    y = split.labels
    if tuple(card.labels) != tuple(split.label_names):
        probs, y, _ = restrict(probs, y, tuple(card.labels), tuple(split.label_names))
    return np.log(np.clip(probs.astype(np.float64), 1e-30, None)), y


def _scores(logits: np.ndarray, y: np.ndarray, t: float) -> dict[str, float]:
    p = softmax(logits, t)
    return {"nll": nll(p, y), "ece": expected_calibration_error(p, y), "accuracy": float((p.argmax(1) == y).mean())}


def calibrate(
    checkpoint: str | Path,
    data: DataConfig,
    output: str | Path | None = None,
    target_accuracy: float | None = 0.9,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Fit T on the validation split and choose the threshold that reaches ``target_accuracy`` on
    it; store both in the card of ``output`` (default: ``checkpoint`` itself); report NLL / ECE
    before and after on val and, as a report only, on test."""
    path = Path(checkpoint)
    if path.suffix not in (".pt", ".safetensors"):
        raise CheckpointError(f"{path}: calibrate needs a .pt or .safetensors checkpoint")
    ckpt = load_checkpoint(path)
    state, card, extra = ckpt.state, ckpt.card, ckpt.training
    model = model_from_state(state, card, str(path))
    splits = load_splits(data)
    (lv, yv), (lt, yt) = (_logits(model, splits[s], card, batch_size) for s in ("val", "test"))
    old_t = card.temperature
    t = fit_temperature(lv, yv)
    result: dict[str, Any] = {
        "temperature": t,
        "previous_temperature": old_t,
        "fitted_on": "val",
        "n_val": len(yv),
        "n_test": len(yt),
        "val": {"before": _scores(lv, yv, old_t), "after": _scores(lv, yv, t)},
        "test": {"before": _scores(lt, yt, old_t), "after": _scores(lt, yt, t)},
    }
    if target_accuracy is not None:
        pv, pt = softmax(lv, t), softmax(lt, t)
        rec = recommend_threshold(pv, yv, target_accuracy)
        if rec["min_confidence"] is not None:
            rec["test"] = apply_threshold(pt, yt, rec["min_confidence"])
        result["risk_coverage"] = {
            "split": "val",
            "curve": risk_coverage(pv, yv),
            "recommended": rec,
            "test_curve": risk_coverage(pt, yt),
        }
    out = Path(output) if output else path
    half = any(v.dtype.is_floating_point and v.element_size() == 2 for v in state.values())
    threshold = card.threshold
    if target_accuracy is not None and result["risk_coverage"]["recommended"]["min_confidence"] is not None:
        threshold = float(result["risk_coverage"]["recommended"]["min_confidence"])  # the card's, beside T
    new = card.with_(temperature=t, threshold=threshold)
    save_model(out, model, new.to_meta(), half=half, extra=extra if out.suffix == ".pt" else None)
    result["threshold"] = threshold
    result["checkpoint"] = str(out)
    return result
