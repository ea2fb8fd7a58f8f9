"""Where the embedded default's real weights live (defined in :mod:`azeros.hub`, a base module that
target generation shares)."""

from azeros.hub import EMBEDDED_WEIGHTS, embedded_path, resolve_weights

__all__ = ["EMBEDDED_WEIGHTS", "embedded_path", "resolve_weights"]
