"""Old spelling of ``resemotenet.inference.faces.centerface`` (kept for one release)."""

from .faces.centerface import CenterFaceDetector, decode, weights_path

__all__ = ["CenterFaceDetector", "decode", "weights_path"]
