"""An async request must not try, and miss, an import each time it runs.

httpcore asks ``sniffio`` which event loop it runs under for every lock, semaphore and event it makes
(several per request). Without sniffio installed that ``import sniffio`` fails every time, and a
failed import is never cached: each one walks the whole of sys.path (measured: 5.1 -> 3.2 ms of client
CPU per held create). The package therefore depends on sniffio; this proves nothing on the request
path still misses an import.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

import pytest
from comet_replicate import AsyncClient
from comet_replicate_emulator import EmulatorConfig
from comet_replicate_emulator._server import RunningEmulator, serve
from comet_replicate_emulator.pytest_plugin import TEST_TOKEN

MODEL = "black-forest-labs/flux-schnell"


class _Misses:
    """A finder placed last on sys.meta_path: it is asked only about modules no real finder found."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.names.append(name)
        return None


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with serve(EmulatorConfig(token=TEST_TOKEN, speed=50.0, seed=3)) as server:
        yield server


def test_async_creates_and_gets_miss_no_import(emulator: RunningEmulator) -> None:
    async def flows(client: AsyncClient, n: int) -> None:
        for i in range(n):
            created = await client.predictions.create(MODEL, {"prompt": f"a kite {i}"})
            await client.predictions.get(created.id)

    async def main(misses: _Misses) -> None:
        client = AsyncClient(api_key=TEST_TOKEN, base_url=emulator.cometapi_base_url)
        try:
            await flows(client, 2)  # warm: first-use imports happen here, outside the count
            sys.meta_path.append(misses)
            try:
                await flows(client, 5)
            finally:
                sys.meta_path.remove(misses)
        finally:
            await client.close()

    misses = _Misses()
    asyncio.run(main(misses))
    assert misses.names == []
