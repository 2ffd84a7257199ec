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


class OutputExistsError(ConfigError):
    """An output is already there and the command was not told to replace it (``--force``) or
    add to it (``--append``); nothing was written. ``utils.io.check_output`` words it."""


class MissingExtraError(ResEmoteNetError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed; install it with: pip install 'resemotenet[{extra}]'")


class BrokenExtraError(MissingExtraError):
    """An optional dependency is installed but fails to import, usually because another package
    pinned one of its own dependencies to an incompatible version."""

    def __init__(self, package: str, extra: str, exc: BaseException):
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        ResEmoteNetError.__init__(
            self,
            f"{package} is installed but fails to import ({reason}); a package it needs has an incompatible "
            f"version (`pip check` names it): pip install --upgrade --force-reinstall 'resemotenet[{extra}]'",
        )


def import_extra(module: str, extra: str):
    """``importlib.import_module(module)``, or a ``MissingExtraError`` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise extra_error(module.split(".")[0], extra, exc) from exc


def extra_error(package: str, extra: str, exc: ImportError) -> MissingExtraError:
    """The error for ``exc``, raised importing ``package``: ``MissingExtraError`` when the package
    itself is absent, ``BrokenExtraError`` when it is there but fails to import."""
    if isinstance(exc, ModuleNotFoundError) and (exc.name or package).split(".")[0] == package:
        return MissingExtraError(package, extra)
    return BrokenExtraError(package, extra, exc)
