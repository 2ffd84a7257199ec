"""Inference: backends (torch, onnxruntime), face detectors, frame sources, the Predictor."""
