"""A site's fine-tune and the before/after a decision can rest on.

``finetune(base, data, output)`` is the library call behind ``resemotenet finetune`` and the
service's fine-tune button:

1. the site's labelled faces (a ``folder:`` dataset; ``groups.csv`` or the review store's groups
   keep a person's or a clip's faces together) are split **by group** into train, validation
   and held-out parts (a folder's own ``test/`` part is the held-out one);
2. ``engine.finetune.fit`` trains on the train part, prepared by the base model's card, and
   chooses the epoch on the validation groups;
3. the temperature and threshold are fitted again on the validation groups;
4. base and fine-tuned model are scored on the held-out groups: accuracy and per-class recall
   with 95 % group-bootstrap intervals, the paired difference with its interval and verdict,
   separately on the faces the base model was unsure of and those it was sure of (a regression
   there is what a fine-tune on uncertain faces can hide), and how many more labelled faces a
   given interval width needs;
5. ``OUTPUT/model.safetensors`` inherits the base card (framing per detector, alignment,
   preprocessing, labels) with the new temperature, threshold, training data and the measured
   figure; ``OUTPUT/report.json`` holds everything above.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..card import Metric, ModelCard
from ..data.dataset import Split
from ..data.readers import get_reader
from ..data.splits import group_split
from ..engine.finetune import FinetuneRecipe, fit, logits_of, prepare_faces
from ..imaging import read_image
from ..metrics import softmax
from ..models.checkpoint import card_of, load_model, save_model
from ..utils.errors import ConfigError, DataError, OutputExistsError
from .calibration import fit_temperature, recommend_threshold
from .intervals import bootstrap_accuracy, bootstrap_recall, more_needed, paired_difference, verdict

MIN_GROUPS = 5
PART_NAMES = ("train", "val", "test")
MIN_STRATUM = 20  # held-out faces each stratum (uncertain, audited confident) needs for a site estimate
TOO_FEW = "too few held-out groups to decide"
REPORT = "report.json"
WEIGHTS = "model.safetensors"


def site_parts(split: dict[str, Split], val_fraction: float = 0.2, test_fraction: float = 0.25, seed: int = 0):
    """(train, val, held-out) Splits of a folder dataset, every one by group."""
    if "all" in split:
        s = split["all"]
        parts = group_split(s.labels, _groups(s), [1 - val_fraction - test_fraction, val_fraction, test_fraction], seed)
        return tuple(s.subset(idx, name) for idx, name in zip(parts, ("train", "val", "test"), strict=True))
    if "test" not in split:
        raise DataError("the site's folder has train/ but no test/: add test/ or give one folder of class folders")
    train = split["train"]
    if "val" in split:
        return train, split["val"], split["test"]
    part = group_split(train.labels, _groups(train), [1 - val_fraction, val_fraction], seed)
    return (
        train.subset(np.flatnonzero(part == 0), "train"),
        train.subset(np.flatnonzero(part == 1), "val"),
        split["test"],
    )


def _groups(s: Split) -> np.ndarray:
    return s.groups if s.groups is not None else np.asarray(s.ids, dtype=str)


def read_faces(s: Split) -> list[np.ndarray]:
    """The crops of a split (a folder's images are the faces the model is to see)."""
    if s.images is not None:
        return list(s.images)
    return [read_image(p) for p in s.paths or []]


def compare(
    base_probs: np.ndarray,
    new_probs: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    labels: tuple[str, ...],
    base_threshold: float,
    n_boot: int = 2000,
    seed: int = 0,
    half_width: float = 0.05,
    uncertain_share: float | None = None,
) -> dict[str, Any]:
    """The before/after of two models' probabilities on the same held-out faces, by group.

    ``uncertain_share``: the share of all faces the site saw that the base model was unsure of
    (the review sampler counts it). With it, ``site_estimate`` weights the uncertain faces and
    the audit sample of confident faces by their shares of the traffic: the site's accuracy
    without the bias of a queue made mostly of hard faces."""
    ok_a, ok_b = base_probs.argmax(1) == y, new_probs.argmax(1) == y
    unsure = base_probs.max(1) < base_threshold
    out: dict[str, Any] = {"faces": int(len(y)), "groups": int(len(set(groups.tolist())))}
    for name, mask in (("all", np.ones(len(y), bool)), ("uncertain", unsure), ("confident", ~unsure)):
        if not mask.any():
            out[name] = {"faces": 0}
            continue
        g = groups[mask]
        diff = paired_difference(ok_b[mask], ok_a[mask], g, n_boot=n_boot, seed=seed)
        out[name] = {
            "faces": int(mask.sum()),
            "groups": int(len(set(g.tolist()))),
            "before": bootstrap_accuracy(ok_a[mask], g, n_boot=n_boot, seed=seed).to_dict(),
            "after": bootstrap_accuracy(ok_b[mask], g, n_boot=n_boot, seed=seed).to_dict(),
            "difference": diff.to_dict(),
            "verdict": verdict(diff),
            "more_faces_for_half_width": {f"{half_width:.2f}": more_needed(diff, half_width)},
        }
    for key, probs in (("recall_before", base_probs), ("recall_after", new_probs)):
        rec = bootstrap_recall(y, probs.argmax(1), groups, n_boot=n_boot, seed=seed)
        out[key] = {labels[c]: iv.to_dict() for c, iv in rec.items()}
    if uncertain_share is not None:
        out["site_estimate"] = {k: stratified(out, k, uncertain_share) for k in ("before", "after")}
    out["verdict"] = out["all"]["verdict"]
    if out["groups"] < MIN_GROUPS:  # a bootstrap over 1-4 groups cannot show how much people differ
        out["verdict"] = TOO_FEW
        out["note"] = (
            f"only {out['groups']} held-out group(s): intervals over fewer than {MIN_GROUPS} groups understate the uncertainty; label more people"
        )
    regress = out["confident"]
    out["regression_on_confident"] = bool(regress.get("faces") and regress["verdict"] == "worse")
    return out


def stratified(out: dict[str, Any], key: str, share: float) -> dict[str, float] | None:
    """``share`` x accuracy on uncertain faces + (1 - ``share``) x accuracy on confident ones, with
    a normal-approximation interval from the two strata's bootstrap intervals (independent
    strata); None when a stratum has fewer than ``MIN_STRATUM`` held-out faces or ``MIN_GROUPS`` groups."""
    unc, conf = out["uncertain"], out["confident"]
    small = [s for s in (unc, conf) if s.get("faces", 0) < MIN_STRATUM or s.get("groups", 0) < MIN_GROUPS]
    if small:  # a stratum of a few faces would pass its noise off as the site's accuracy
        return None
    est = share * unc[key]["estimate"] + (1 - share) * conf[key]["estimate"]
    half = ((share * _half(unc[key])) ** 2 + ((1 - share) * _half(conf[key])) ** 2) ** 0.5
    return {"estimate": est, "low": max(0.0, est - half), "high": min(1.0, est + half), "uncertain_share": share}


def _half(iv: dict[str, float]) -> float:
    return (iv["high"] - iv["low"]) / 2


def finetune(
    base: str | Path | None,
    data: str | Path,
    output: str | Path,
    recipe: FinetuneRecipe | None = None,
    rehearsal_data: str | Path | None = None,
    rehearsal_faces: int = 8000,
    val_fraction: float = 0.2,
    test_fraction: float = 0.25,
    target_accuracy: float = 0.9,
    uncertain_share: float | None = None,
    force: bool = False,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base`` on a site's labelled faces (a ``folder:`` dataset path) and measure it
    against the base on held-out groups; write ``output/`` (weights, report). Returns the report."""
    recipe = recipe or FinetuneRecipe()
    out = Path(output)
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out} already holds files; pass --force to replace them")
    model = load_model(base)
    card = card_of(model)
    train, val, test = _parts(data, card, val_fraction, test_fraction, recipe.seed)
    faces = {name: prepare_faces(read_faces(s), card) for name, s in (("train", train), ("val", val), ("test", test))}
    rehearsal = _rehearsal(rehearsal_data, card, rehearsal_faces, recipe.seed) if recipe.rehearsal else None
    tuned, history, best_epoch = fit(
        model, card, (faces["train"], train.labels), (faces["val"], val.labels), recipe, rehearsal, progress
    )
    temperature, threshold = _recalibrate(logits_of(tuned, faces["val"], card), val.labels, target_accuracy)
    base_probs = softmax(logits_of(model, faces["test"], card), card.temperature)
    new_probs = softmax(logits_of(tuned, faces["test"], card), temperature)
    base_threshold = card.threshold if card.threshold is not None else 0.0
    report = {
        "base": str(base or "default"),
        "data": str(data),
        "date": time.strftime("%Y-%m-%d"),
        "recipe": recipe.to_dict(),
        "parts": {
            k: {"faces": len(s), "groups": len(set(_groups(s).tolist()))}
            for k, s in zip(PART_NAMES, (train, val, test))
        },
        "best_epoch": best_epoch,
        "history": history,
        "temperature": temperature,
        "threshold": threshold,
    }
    groups = _groups(test)
    report["held_out"] = compare(
        base_probs,
        new_probs,
        test.labels,
        groups,
        tuple(card.labels),
        base_threshold,
        seed=recipe.seed,
        uncertain_share=uncertain_share,
    )
    _write(out, tuned, _inherit(card, base, data, len(train), report), report, force)
    return report


def _parts(data: str | Path, card: ModelCard, val_fraction: float, test_fraction: float, seed: int):
    """The site folder's train / val / held-out parts by group, checked against the model."""
    train, val, test = site_parts(get_reader("folder")(Path(data)), val_fraction, test_fraction, seed)
    if tuple(train.label_names) != tuple(card.labels):
        raise ConfigError(f"the site's classes {list(train.label_names)} differ from the model's {list(card.labels)}")
    if len(val) == 0 or len(test) == 0:
        raise DataError(
            f"too few groups to hold any out ({len(train) + len(val) + len(test)} faces): label more groups"
        )
    return train, val, test


def _rehearsal(spec: str | Path | None, card: ModelCard, n: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """FER2013 training faces (``fer2013:PATH`` or a csv path) prepared by the card, or None."""
    if not spec:
        return None
    from ..data.loading import parse_spec

    name, path = parse_spec(str(spec)) if ":" in str(spec) and not Path(str(spec)).exists() else ("fer2013", str(spec))
    s = get_reader(name)(path)["train"]
    idx = np.random.default_rng(seed).permutation(len(s))[:n]
    s = s.subset(idx)
    return prepare_faces(read_faces(s), card), s.labels


def _recalibrate(logits: np.ndarray, y: np.ndarray, target_accuracy: float) -> tuple[float, float | None]:
    """(temperature, threshold) fitted on the validation groups' logits."""
    temperature = fit_temperature(logits, y)
    return temperature, recommend_threshold(softmax(logits, temperature), y, target_accuracy)["min_confidence"]


def _inherit(card: ModelCard, base: Any, data: Any, n: int, report: dict[str, Any]) -> ModelCard:
    """The base card with what the fine-tune changed: temperature, threshold, training data,
    recipe and the accuracy measured on the held-out groups; framing and preprocessing kept."""
    source = (
        f"{card.training_data or base}; then fine-tuned on {n} labelled faces of {data} (epoch {report['best_epoch']})"
    )
    after = report["held_out"]["all"]["after"]["estimate"]
    return card.with_(
        temperature=float(report["temperature"]),
        threshold=None if report["threshold"] is None else float(report["threshold"]),
        training_data=source,
        recipe=f"resemotenet finetune {json.dumps(report['recipe'], sort_keys=True)}",
        metrics=(Metric("accuracy", after, "held-out groups", str(data), report["date"], "resemotenet finetune"),),
    )


def _write(out: Path, model, card: ModelCard, report: dict[str, Any], force: bool) -> None:
    """Weights, report and per-epoch history into a temporary folder, then renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        save_model(tmp / WEIGHTS, model, card.to_meta())
        (tmp / REPORT).write_text(json.dumps(report, indent=1, default=float))
        with open(tmp / "history.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(report["history"][0]))
            w.writeheader()
            w.writerows(report["history"])
        if out.exists():
            if not force:
                raise OutputExistsError(f"{out} already exists; pass --force to replace it")
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
