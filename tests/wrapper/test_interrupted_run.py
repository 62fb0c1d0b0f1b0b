"""An interrupted `run` never loses the prediction's id (issue 13 item 1).

Ctrl-C (sync) or task cancellation (async) arriving while the create is held open is held back until
the create's answer is read: `on_created` gets the id, the unfinished prediction gets its bounded
cancel, then the interrupt propagates (with a note naming the prediction).
"""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest
from comet_replicate import AsyncClient, Client, _interrupts

from .conftest import KEY, prediction

BASE = "http://127.0.0.1:9/replicate/v1"
MODEL = "black-forest-labs/flux-dev"


class Server:
    """Answers the create with a starting prediction, polls with processing, cancels with canceled."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path.removeprefix('/replicate/v1')}")
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json=prediction("canceled"))
        if request.method == "POST":
            return httpx.Response(201, json=prediction("starting"))
        return httpx.Response(200, json=prediction("processing"))


def test_ctrl_c_during_the_held_create_still_reports_the_id_and_cancels() -> None:
    server = Server()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/models/" in request.url.path:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the server holds the create
        return server.answer(request)

    created: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(KeyboardInterrupt) as info:
            client.run(MODEL, {"prompt": "b"}, on_created=lambda p: created.append(p.id))
    assert created == ["p1"]
    assert server.seen[-1] == "POST /predictions/p1/cancel"
    assert any("p1" in note for note in info.value.__notes__)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


@pytest.mark.parametrize("functions", ["native", "public wrappers"])
def test_the_ctrl_c_guard_defers_through_the_native_signal_functions_or_the_public_ones(
    functions: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard reads and swaps SIGINT's handler with CPython's C functions (`_signal`): the
    `signal.signal` / `signal.getsignal` wrappers raise and catch two exceptions per call to make
    enum members (about 80,000 instructions per create). Natively the wrappers are never called (here
    they fail); where `_signal` is missing the guard uses them, and defers Ctrl-C the same way."""
    server = Server()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/models/" in request.url.path:
            os.kill(os.getpid(), signal.SIGINT)
        return server.answer(request)

    def wrapper_called(*args: object) -> object:
        raise AssertionError("the guard went through the signal module's Python wrapper")

    if functions == "native":
        monkeypatch.setattr(signal, "signal", wrapper_called)
        monkeypatch.setattr(signal, "getsignal", wrapper_called)
    else:
        monkeypatch.setattr(_interrupts, "_getsignal", signal.getsignal)
        monkeypatch.setattr(_interrupts, "_setsignal", signal.signal)
    created: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(KeyboardInterrupt):
            client.run(MODEL, {"prompt": "b"}, on_created=lambda p: created.append(p.id))
    monkeypatch.undo()
    assert created == ["p1"]
    assert server.seen[-1] == "POST /predictions/p1/cancel"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_abandons_the_held_create() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return httpx.Response(201, json=prediction("starting"))

    created: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = Client(api_key=KEY, base_url=BASE, http_client=http)
        with pytest.raises(KeyboardInterrupt):
            client.run(MODEL, {"prompt": "b"}, on_created=lambda p: created.append(p.id))
    assert created == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_task_cancellation_during_the_held_create_still_reports_the_id_and_cancels() -> None:
    server = Server()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/models/" in request.url.path:
            holding.set()
            await release.wait()  # the server holds the create (Prefer: wait)
        return server.answer(request)

    created: list[str] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
        task = asyncio.create_task(
            client.run(MODEL, {"prompt": "b"}, on_created=lambda p: created.append(p.id))
        )
        await holding.wait()
        task.cancel()
        await asyncio.sleep(0)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert created == ["p1"]
    assert server.seen[-1] == "POST /predictions/p1/cancel"


async def test_a_second_cancellation_abandons_the_held_create() -> None:
    holding = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        holding.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = AsyncClient(api_key=KEY, base_url=BASE, http_client=http)
        task = asyncio.create_task(client.run(MODEL, {"prompt": "b"}))
        await holding.wait()
        task.cancel()
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
