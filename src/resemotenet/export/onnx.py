"""ONNX export: one self-describing file, checked against torch before it is allowed to exist.

The file's ``metadata_props`` hold the checkpoint's meta JSON under ``resemotenet`` (model name,
labels, preprocessing, temperature, package version), so ``resemotenet eval model.onnx`` and the
onnxruntime backend need nothing else. ``labels`` and ``preprocess`` are repeated as separate keys
for people reading the file with other tools. The batch axis is dynamic.

The parity check runs the freshly written file in onnxruntime on real faces (FER2013 PrivateTest
when the data is present, synthetic faces otherwise) and compares with torch: the largest absolute
logit difference must stay within ``ATOL`` and every argmax must agree. Only then is the
temporary file renamed onto the destination; on failure nothing is left behind.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..card import ModelCard
from ..config import PreprocessSpec
from ..data.dataset import Split, materialize
from ..imaging import synthetic_faces  # noqa: F401  (its home is imaging; kept here one release)
from ..preprocess import FaceTransform
from ..utils.errors import CheckpointError, ConfigError, ResEmoteNetError, extra_error
from ..utils.io import atomic_path, check_output
from ..utils.ort import ORT_OPT_LEVELS, ort_session  # noqa: F401  (re-exported)

META_KEY = "resemotenet"  # same key, same JSON as a checkpoint's metadata
ATOL = 1e-4
DEFAULT_CHECK_SIZE = 1024
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class ExportError(ResEmoteNetError):
    """An export or quantization failed its own checks; nothing was written."""


# ---- faces to check and calibrate with -------------------------------------------------------
FER2013_ENV = "RESEMOTENET_FER2013"


def find_fer2013() -> Path | None:
    """The real FER2013 csv if the user has named it: ``$RESEMOTENET_FER2013`` (a file or its
    folder), else ``fer2013.csv``/``fer2013.csv.gz`` in the working directory. The package never
    guesses other places."""
    import os

    named = os.environ.get(FER2013_ENV)
    candidates = [Path(named)] if named else [Path("fer2013.csv"), Path("fer2013.csv.gz")]
    for cand in candidates:
        if cand.is_dir():
            cand = next((cand / n for n in ("fer2013.csv", "fer2013.csv.gz") if (cand / n).is_file()), cand)
        if cand.is_file():
            return cand
    return None


def fer2013_split(split: str = "test", root: str | Path | None = None) -> Split | None:
    """One official FER2013 split (``val`` = PublicTest, ``test`` = PrivateTest), or None when
    no FER2013 file is available."""
    from ..data.readers import get_reader

    path = Path(root) if root else find_fer2013()
    if path is None:
        return None
    return get_reader("fer2013")(path)[split]  # the official split itself: no protocol carving applies


def default_check_faces(n: int = DEFAULT_CHECK_SIZE) -> tuple[np.ndarray, str]:
    """(uint8 faces, where they came from): the first ``n`` FER2013 PrivateTest faces, or
    synthetic faces when the data is absent."""
    test = fer2013_split("test")
    if test is None or test.images is None:
        return synthetic_faces(n), f"{n} synthetic faces (FER2013 not found)"
    n = min(n, len(test))
    return test.images[:n], f"{n} FER2013 PrivateTest faces"


# ---- loading ---------------------------------------------------------------------------------
def load_for_export(checkpoint_or_model: str | Path | nn.Module) -> tuple[nn.Module, ModelCard]:
    """(float32 CPU model in eval mode, its card) from a checkpoint path, 'default' or a module."""
    from ..models.checkpoint import card_of

    if isinstance(checkpoint_or_model, nn.Module):
        try:
            card = card_of(checkpoint_or_model)
        except CheckpointError:
            raise CheckpointError(
                "model has no model card (labels and preprocess); build it with make_meta or load it with load_model"
            ) from None
        model = copy.deepcopy(checkpoint_or_model)  # never move or cast the caller's module
    else:
        from ..models import load_model

        path = str(checkpoint_or_model)
        if path.endswith(".onnx"):
            raise CheckpointError(f"{path}: already an ONNX file; export takes a checkpoint (.pt, .safetensors)")
        model = load_model(None if path == "default" else path)
        card = card_of(model)
    return model.float().cpu().eval(), card


# ---- export ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters warn about unrelated optional packages (torchvision ops) and deprecations."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _metadata(card: ModelCard) -> dict[str, str]:
    return {
        META_KEY: card.to_json(),
        "labels": json.dumps(list(card.labels)),  # readable by tools that know nothing of the card
        "preprocess": json.dumps(card.preprocess.to_dict()),
    }


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, opset: int, props: dict[str, str]) -> str:
    """Write ``model`` to ``path`` with ``props``; returns the exporter used. The dynamo exporter
    is tried first; the legacy TorchScript exporter is the fallback."""
    try:
        with _quiet():
            batch = torch.export.Dim("batch", min=1, max=65536)
            prog = torch.onnx.export(
                model,
                (example,),
                None,
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: batch}},
                verbose=False,
            )
        prog.model.metadata_props.update(props)
        prog.save(str(path))
        return "dynamo"
    except OSError:
        raise  # a full disk is not an exporter problem: atomic_path reports it
    except Exception as first:  # noqa: BLE001 - the dynamo exporter raises many types; fall back once
        dynamo_error = f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''}"
    import onnx

    try:
        with _quiet():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    except OSError:
        raise
    except Exception as exc:
        raise ExportError(
            f"ONNX export failed (dynamo: {dynamo_error[:150]}; legacy: {str(exc).splitlines()[0][:150]})"
        ) from exc
    proto = onnx.load(str(path))
    set_metadata(proto, props)
    onnx.save(proto, str(path))
    return "legacy"


def set_metadata(proto: Any, props: dict[str, str]) -> None:
    """Replace or add ``metadata_props`` entries of an ``onnx.ModelProto``."""
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for k, v in keep + list(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


def ort_logits(
    session: Any, x: np.ndarray, batch_size: int = 256, desc: str = "", progress: bool = False
) -> np.ndarray:
    """Logits of ``x`` in batches; a progress bar named ``desc`` when ``progress``."""
    from ..utils.progress import track

    name = session.get_inputs()[0].name
    starts = range(0, len(x), batch_size)
    if progress:
        starts = track(starts, total=len(starts), desc=desc or "onnxruntime", unit="batch")
    return np.concatenate([session.run(None, {name: x[i : i + batch_size]})[0] for i in starts])


def check_inputs(images: np.ndarray | torch.Tensor, spec: PreprocessSpec, what: str = "check images") -> np.ndarray:
    """uint8 faces (N, H, W[, 3]) -> float32 (N, C, S, S) for ``spec``; clear errors otherwise."""
    arr = np.asarray(images)
    if arr.size == 0 or len(arr) == 0:
        raise ConfigError(f"{what}: no images")
    if arr.dtype != np.uint8:
        raise ConfigError(f"{what}: expected uint8 face crops, got {arr.dtype}")
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3)) or arr.shape[1] != arr.shape[2]:
        raise ConfigError(f"{what}: expected square faces shaped (N, H, W) or (N, H, W, 3), got {tuple(arr.shape)}")
    transform = FaceTransform(spec)  # the model card's one preprocessing (uint8 resize, as training and eval)
    return np.concatenate([transform(arr[i : i + 512]).numpy() for i in range(0, len(arr), 512)])


def parity(model: nn.Module, session: Any, x: np.ndarray) -> dict[str, Any]:
    """Largest absolute logit difference and argmax agreement of torch vs onnxruntime on ``x``."""
    with torch.inference_mode():
        ref = np.concatenate([model(torch.from_numpy(x[i : i + 256])).numpy() for i in range(0, len(x), 256)])
    got = ort_logits(session, x)
    same = int((ref.argmax(1) == got.argmax(1)).sum())
    return {"n_check": len(x), "max_abs_diff": float(np.abs(ref - got).max()), "argmax_same": same}


def require_exporter() -> None:
    """The exporter needs onnx and onnxscript: a missing one is named before any work."""
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError as exc:
            raise extra_error(module, "export", exc) from exc


def export_onnx(
    checkpoint_or_model: str | Path | nn.Module,
    output: str | Path,
    opset: int = 18,
    check_images: np.ndarray | Split | None = None,
    force: bool = False,
    check_size: int = DEFAULT_CHECK_SIZE,
    check_name: str = "",
    progress: bool = True,
) -> dict[str, Any]:
    """Export to ONNX with metadata and a dynamic batch axis; verify against torch; return a report.

    ``check_images``: uint8 faces or a ``Split`` for the parity check (at most ``check_size`` are
    used); None = the first ``check_size`` FER2013 PrivateTest faces when available, else
    synthetic faces; ``check_name`` names given faces in the report. Raises ``ExportError``
    (and writes nothing) when the logits differ by more than ``ATOL`` or any argmax differs.
    ``progress``: a bar over the steps (export, load, parity check).
    """
    require_exporter()
    dst = check_output(output, force=force)
    model, card = load_for_export(checkpoint_or_model)
    spec = card.preprocess
    if check_images is None:
        check_images, source = default_check_faces(check_size)
    elif isinstance(check_images, Split):
        part = check_images.subset(np.arange(min(check_size, len(check_images))))
        source = f"{len(part)} faces of the {part.name} split of {part.source or 'the given data'}"
        check_images = materialize(part, spec.size, reduce_to=spec.reduce_to)
    else:
        source = check_name or f"{len(check_images)} given faces"
    x = check_inputs(check_images, spec)
    t0 = time.perf_counter()
    from ..utils.progress import progress as show

    with atomic_path(dst, force=True) as tmp, show(total=3, desc="export", unit="step", enabled=progress) as bar:
        exporter = _write_onnx(model, torch.from_numpy(x[:2]).clone(), tmp, opset, _metadata(card))
        bar.update(1)
        try:
            session = ort_session(tmp)
        except CheckpointError as exc:  # the graph just written does not load
            raise ExportError(
                f"onnxruntime cannot load the exported graph ({str(exc).split(' (', 1)[-1][:200]}"
            ) from exc
        bar.update(1)
        report = parity(model, session, x)
        bar.update(1)
        del session
        if report["max_abs_diff"] > ATOL or report["argmax_same"] != report["n_check"]:
            raise ExportError(
                f"parity check failed on {source}: max |logit diff| {report['max_abs_diff']:.3g} "
                f"(limit {ATOL:g}), argmax identical {report['argmax_same']}/{report['n_check']}; "
                f"{dst} was not written"
            )
    report.update(
        output=str(dst),
        size_bytes=dst.stat().st_size,
        opset=opset,
        exporter=exporter,
        model=card.arch,
        check_source=source,
        atol=ATOL,
        labels=list(card.labels),
        preprocess=spec.to_dict(),
        seconds=round(time.perf_counter() - t0, 2),
    )
    return report
