"""Write the model cards of the shipped weights (``src/resemotenet/weights/{default,fast}.safetensors``).

The weights are not touched; only their metadata is rewritten. Every figure below comes from
RECIPES.md (command, data, split and date there) or from ``benchmarks/framing.py``:

    python tools/write_shipped_cards.py
"""

from __future__ import annotations

import dataclasses

from resemotenet.card import Framing, Metric
from resemotenet.models.checkpoint import SHIPPED, load_checkpoint, write_card

FER = "FER2013 (fer2013.csv)"
EVAL = "resemotenet eval {m} --data fer2013:fer2013.csv.gz --split {s}"
# benchmarks/framing.py --model {default,fast} --n 400, PublicTest, 2026-12-02: Haar boxes are 0.96x the
# pasted FER2013 square (best margin 0.0 for both models, 8 points above margin 0.2 for 'default');
# CenterFace boxes are 0.77x (best margin 0.0-0.1; 0.1 keeps the brows, as 0.77 x 1.2 ~ 0.92 of the square)
# benchmarks/detectors.py --frames 12 --align 120 (PublicTest, 2026-12-02): on 116 faces turned by
# 10-25 degrees, levelling the eyes (CenterFace landmarks) gave 66.4 % against 57.8 % unaligned
FRAMING = Framing(margin=0.2, detector_margins={"haar": 0.0, "centerface": 0.1}, align=True)


def ferplus_metric(model: str, value: float, date: str = "2026-12-04") -> Metric:
    """Accuracy against the FER+ majority labels of PrivateTest (7 classes)."""
    return Metric(
        "accuracy_ferplus_majority",
        value,
        "test (PrivateTest, 3,137 faces with a FER+ majority among the 7 classes)",
        "FER+ (fer2013new.csv)",
        date,
        f"resemotenet eval {model} --data ferplus:ferplus --data-option fer2013=fer2013 "
        "--data-option mode=majority --split test",
    )


def corrupted_metric(model: str, value: float, date: str = "2026-12-04") -> Metric:
    """Mean accuracy over every corruption and severity, as a share of clean accuracy."""
    return Metric(
        "corrupted_over_clean",
        value,
        "test (PrivateTest, 5 corruptions x severities 1-3)",
        FER,
        date,
        EVAL.format(m=model, s="test") + " --corruptions all",
    )


CARDS = {
    "default": dict(
        recipe="configs/fer2013_s.yaml, then configs/fer2013_s96.yaml, then configs/fer2013_s96_stage3.yaml, "
        "then configs/fer2013_s96_stage4.yaml (RECIPES.md); temperature fitted on PublicTest",
        # benchmarks/framing.py --model default --n 400 (PublicTest, 2026-12-04): stage 4 is best at margin 0.0
        # for both detectors (haar 63.57 %, centerface 62.08 % against 59.27 % at CenterFace's former 0.1);
        # mediapipe (266 faces, boxes 0.87x the square, centred 0.04 of a side low) is best at 0.1: 62.78 %
        # against 60.15 % at 0.0, shift_y 0.0 (a shift of -0.1 lost 3 points)
        framing=Framing(margin=0.2, detector_margins={"haar": 0.0, "centerface": 0.0, "mediapipe": 0.1}, align=True),
        # FER2013's faces are 48x48, enlarged to 96 in training: a larger crop is reduced to 48 first.
        # benchmarks/resolution.py (PublicTest, 2026-12-07): faces sharpened beyond what training showed
        # lose 3.0 points straight to 96 and 0.6 with the reduction; the training inputs themselves lose 0.6
        source_size=48,
        threshold=0.785,  # --min-confidence for 90 % accuracy on PublicTest (resemotenet calibrate --target-accuracy 0.9)
        # Grad-CAM block: res_block1 and res_block2 tie on 300 PublicTest faces by deletion (1.60x the drop
        # of a shifted mask each, se 1.46x); res_block2's map of the shipped photo sits on the mouth
        explain_layer="res_block2",
        training_data="FER2013 Training (28,709 faces), targets half FER2013 label and half FER+ crowd votes; "
        "selected on PublicTest against FER2013 labels",
        metrics=(
            Metric("accuracy", 0.6604, "test (PrivateTest)", FER, "2026-12-04", EVAL.format(m="default", s="test")),
            Metric("macro_f1", 0.6154, "test (PrivateTest)", FER, "2026-12-04", EVAL.format(m="default", s="test")),
            ferplus_metric("default", 0.7861),
            corrupted_metric("default", 0.872),
            Metric(
                "accuracy", 0.6478, "val (PublicTest, selection)", FER, "2026-12-04", EVAL.format(m="default", s="val")
            ),
        ),
    ),
    "fast": dict(
        recipe="configs/fer2013_s.yaml, then configs/fer2013_s_fast_distill.yaml (distilled from stage 3 of "
        "'default'; RECIPES.md); temperature fitted on PublicTest",
        # benchmarks/framing.py --model fast --n 400 (PublicTest, 2026-12-04): best margin 0.0 for both detectors
        # (haar 61.43 %, centerface 61.24 % against 58.71 % at margin 0.1); mediapipe too, 63.53 % against
        # 59.02 % at 0.1, shift_y 0.0
        framing=Framing(margin=0.2, detector_margins={"haar": 0.0, "centerface": 0.0, "mediapipe": 0.0}, align=True),
        threshold=0.786,  # --min-confidence for 90 % accuracy on PublicTest (resemotenet calibrate --target-accuracy 0.9)
        training_data="FER2013 Training (28,709 faces), FER2013 labels and a 96x96 teacher's soft labels "
        "(stage 3 of 'default'); selected on PublicTest",
        metrics=(
            Metric("accuracy", 0.6662, "test (PrivateTest)", FER, "2026-12-04", EVAL.format(m="fast", s="test")),
            Metric("macro_f1", 0.6137, "test (PrivateTest)", FER, "2026-12-04", EVAL.format(m="fast", s="test")),
            ferplus_metric("fast", 0.7000),
            corrupted_metric("fast", 0.732),
            Metric(
                "accuracy", 0.6486, "val (PublicTest, selection)", FER, "2026-12-04", EVAL.format(m="fast", s="val")
            ),
        ),
    ),
}


def main() -> None:
    from resemotenet.card import ModelCard
    from resemotenet.models import create_model

    for name, fields in CARDS.items():
        path = SHIPPED[name]
        _, meta, _ = load_checkpoint(path)
        card = ModelCard.from_meta(meta, str(path))
        model = create_model(card.arch, **dict(card.arch_kwargs))
        fields = {"training_data": "FER2013 Training (28,709 faces), selected on PublicTest", **fields}
        layer = fields.pop("explain_layer", None)
        extra = {k: v for k, v in dict(card.extra).items() if k != "explain_layer"}
        fields["extra"] = {**extra, "explain_layer": layer} if layer else extra
        framing = fields.pop("framing", FRAMING)
        source = fields.pop("source_size", None)
        preprocess = dataclasses.replace(card.preprocess, source_size=source)
        card = card.with_(
            framing=framing, preprocess=preprocess, parameters=sum(p.numel() for p in model.parameters()), **fields
        )
        write_card(path, card)
        print(f"{path}:\n{card.describe()}\n")


if __name__ == "__main__":
    main()
