"""Foundations shared by every layer: typed errors, atomic file writes, hashing."""
