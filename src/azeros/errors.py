"""The errors azeros raises for things a user can fix: the command line prints them as one line and exits 2.

Each also derives from the built-in error a caller would expect (``ValueError``, ``FileExistsError``,
``RuntimeError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["AzerosError", "ConfigError", "DeviceError", "RunFolderError"]


class AzerosError(Exception):
    """A problem with the user's input or set-up, stated so it can be fixed without a traceback."""


class ConfigError(AzerosError, ValueError):
    """A recipe or override that cannot work: an unknown key, a value of the wrong type, settings at odds."""


class RunFolderError(AzerosError, FileExistsError):
    """A run's output folder holds another run, or a run whose recipe has changed since."""


class DeviceError(AzerosError, RuntimeError):
    """The device asked for is not usable with this torch build or this machine."""
