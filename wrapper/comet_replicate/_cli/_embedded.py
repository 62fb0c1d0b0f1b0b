"""The emulator behind ``run --emulator``: served in this process on a free loopback port.

The emulator is imported here, lazily, and nowhere in the library: ``import comet_replicate`` stays light
and a client never shares code with the server it talks to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ._errors import CliUsageError

__all__ = ["EMULATOR_TOKEN", "embedded_emulator", "import_emulator"]

#: The bearer token the CLI sends to the embedded emulator, which accepts any token.
EMULATOR_TOKEN = "emulator-no-key-needed"


def import_emulator() -> ModuleType:
    """``comet_replicate_emulator``, or a usage error naming the extra to install."""
    try:
        import comet_replicate_emulator
    except ImportError as exc:
        raise CliUsageError(
            f"the emulator needs the 'emulator' extra ({exc.name or exc} is missing): "
            "pip install '.[emulator]' in a checkout "
            "(once published: pip install 'comet-replicate[emulator]')"
        ) from None
    module: ModuleType = comet_replicate_emulator
    return module


@contextmanager
def embedded_emulator() -> Iterator[str]:
    """Serve the emulator on a free loopback port in this process; yield its CometAPI base URL.

    Unseeded, so each run makes a new prediction id and image, as the real API would.
    """
    emulator = import_emulator()
    config = emulator.EmulatorConfig(seed=None)
    with emulator.serve(config, host="127.0.0.1", port=0) as server:
        yield str(server.cometapi_base_url)
