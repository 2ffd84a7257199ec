"""Typed errors. Library code raises these; only the CLI turns them into one-line messages."""


class ResEmoteNetError(Exception):
    """Base class for every error the toolkit raises on purpose."""


class DataError(ResEmoteNetError):
    """A dataset file or image is missing, unreadable or malformed."""


class ConfigError(ResEmoteNetError):
    """A configuration key or value is invalid."""


class CheckpointError(ResEmoteNetError):
    """A checkpoint is missing, unsafe, or belongs to another architecture."""


class OutputError(ResEmoteNetError):
    """A result or model file could not be written (full disk, no permission): the run stops."""


class MissingExtraError(ResEmoteNetError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed; install it with: pip install 'resemotenet[{extra}]'")


def import_extra(module: str, extra: str):
    """``importlib.import_module(module)``, or a ``MissingExtraError`` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra) from exc
