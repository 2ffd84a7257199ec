"""resemotenet: facial emotion recognition with ResEmoteNet, trained and measured honestly."""

__version__ = "0.1.0"
