"""Datasets: one reader per format (``readers/``), the honest split protocol (``dataset``), image
decoding (``images``), and the one way to open a dataset, ``load``."""

from .loading import load, load_splits, parse_spec

__all__ = ["load", "load_splits", "parse_spec"]
