"""Deployment: ONNX export with metadata and a parity check, and static int8 quantization.

Both need the ``export`` extra (onnx, onnxruntime, onnxscript); it is imported inside the
functions, so importing this package costs nothing.
"""

from .onnx import ATOL, ExportError, export_onnx
from .quantize import quantize_onnx

__all__ = ["ATOL", "ExportError", "export_onnx", "quantize_onnx"]
