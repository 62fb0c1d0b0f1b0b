"""comet-replicate: a bounded, typed client for CometAPI's Replicate-format FLUX predictions."""

from ._version import __version__

__all__ = ["__version__"]
