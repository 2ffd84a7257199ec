"""The one place an onnxruntime session is opened (the emotion model, the face detector, export
checks and quantization all use it): CPU provider, sequential execution, a chosen graph
optimisation level, and one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, import_extra

ORT_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def ort_session(path: str | Path, threads: int | None = None, opt_level: str = "all", what: str = "ONNX model") -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU for ``path``."""
    ort = import_extra("onnxruntime", "export")
    if opt_level not in ORT_OPT_LEVELS:
        raise ConfigError(f"unknown graph optimisation level {opt_level!r}; valid: {', '.join(ORT_OPT_LEVELS)}")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} file not found")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_OPT_LEVELS[opt_level])
    opts.inter_op_num_threads = 1
    if threads:
        opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: not a loadable {what} ({str(exc).splitlines()[0][:200]})") from exc
