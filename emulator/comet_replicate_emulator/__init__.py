"""A local, spec-conformant CometAPI/Replicate prediction server for FLUX models.

Use it as moto or stripe-mock are used: no key, no network, real images, configurable faults.

    from comet_replicate_emulator import EmulatorConfig, serve
    with serve(EmulatorConfig(speed=50)) as emulator:
        base_url = emulator.base_url + "/replicate/v1"

It reads every rule from openapi.yaml and never imports the client it is meant to test. Names load on
first use, so importing the package (or its pytest plugin) does not pull in Starlette or Pillow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import EmulatorApp, create_app
    from ._cli import main
    from ._clock import Clock, ManualClock, ScaledClock
    from ._config import DEFAULT_TIMINGS, EmulatorConfig, Faults, ModelTiming
    from ._server import RunningEmulator, serve
    from ._state import Emulator

_WHERE = {
    "DEFAULT_TIMINGS": "._config",
    "Clock": "._clock",
    "Emulator": "._state",
    "EmulatorApp": "._app",
    "EmulatorConfig": "._config",
    "Faults": "._config",
    "ManualClock": "._clock",
    "ModelTiming": "._config",
    "RunningEmulator": "._server",
    "ScaledClock": "._clock",
    "create_app": "._app",
    "main": "._cli",
    "serve": "._server",
}

__all__ = [
    "DEFAULT_TIMINGS",
    "Clock",
    "Emulator",
    "EmulatorApp",
    "EmulatorConfig",
    "Faults",
    "ManualClock",
    "ModelTiming",
    "RunningEmulator",
    "ScaledClock",
    "create_app",
    "main",
    "serve",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        try:
            module = importlib.import_module(_WHERE[name], __name__)
        except ImportError as exc:
            raise ImportError(
                f"comet_replicate_emulator.{name} needs the 'emulator' extra "
                f"(pip install 'comet-replicate[emulator]'): {exc}",
                name=exc.name,
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
