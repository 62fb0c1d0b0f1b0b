"""`run` interrupted at random instants never loses a paid prediction (issue 13 item 1).

Against the emulator in its own process at real speed, `AsyncClient.run` tasks are cancelled and
sync `Client.run` calls get a real SIGINT at random moments across their whole lifetime (before the
create, during the held create, while polling). Afterwards every prediction the emulator created is
one whose id reached the caller (`on_created`), and none of them is left running: each unfinished
one received its cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import threading
from collections.abc import Iterator

import httpx
import pytest
from comet_replicate import AsyncClient, Client, CometReplicateError

from tests.reliability._support import EmulatorProcess, size

MODEL = "black-forest-labs/flux-dev"
KEY = "sk-reliability"
ASYNC_DRAWS = size(24, 200)
SYNC_DRAWS = size(6, 50)
LATEST = 3.0  # seconds: interrupts land anywhere from before the create to deep into the hold


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--speed", "1", "--seed", "13") as server:
        yield server


def _created(emulator: EmulatorProcess) -> set[str]:
    stats = httpx.get(emulator.base_url + "/_emulator/stats", timeout=10).json()
    return set(stats["prediction_ids"])


def _statuses(emulator: EmulatorProcess, ids: set[str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=emulator.cometapi_base_url, headers=headers, timeout=10) as http:
        return {pid: http.get(f"/predictions/{pid}").json()["status"] for pid in ids}


def _assert_nothing_lost_or_left_running(
    emulator: EmulatorProcess, before: set[str], known: set[str]
) -> None:
    created = _created(emulator) - before
    assert created <= known, f"created but never reported to the caller: {sorted(created - known)}"
    running = {pid: s for pid, s in _statuses(emulator, created).items() if s in ("starting", "processing")}
    assert not running, f"left running without a cancel: {running}"


def test_cancelled_async_runs_report_every_id_and_cancel_every_unfinished_prediction(
    emulator: EmulatorProcess,
) -> None:
    before = _created(emulator)
    known: set[str] = set()
    rng = random.Random(1313)

    async def one(client: AsyncClient, delay: float) -> None:
        task = asyncio.create_task(
            client.run(MODEL, {"prompt": "boat"}, on_created=lambda p: known.add(p.id))
        )
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, CometReplicateError):
            await task

    async def main() -> None:
        async with AsyncClient(api_key=KEY, base_url=emulator.cometapi_base_url) as client:
            await asyncio.gather(*(one(client, rng.uniform(0.0, LATEST)) for _ in range(ASYNC_DRAWS)))

    asyncio.run(main())
    _assert_nothing_lost_or_left_running(emulator, before, known)


def test_ctrl_c_in_sync_runs_reports_every_id_and_cancels_every_unfinished_prediction(
    emulator: EmulatorProcess,
) -> None:
    before = _created(emulator)
    known: set[str] = set()
    rng = random.Random(31)
    with Client(api_key=KEY, base_url=emulator.cometapi_base_url) as client:
        for _ in range(SYNC_DRAWS):
            timer = threading.Timer(rng.uniform(0.0, LATEST), os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            try:
                client.run(MODEL, {"prompt": "boat"}, on_created=lambda p: known.add(p.id))
            except (KeyboardInterrupt, CometReplicateError):
                pass
            finally:
                timer.join()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _assert_nothing_lost_or_left_running(emulator, before, known)
