"""Leaving a run early (deadline, Ctrl-C, task cancellation, a callback raising) cancels the prediction."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from comet_replicate import AsyncClient, Client, PredictionTimeout

from .conftest import CREATE_PATH, FakeTime, prediction

MODEL = "black-forest-labs/flux-schnell"


def _pending(api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    api.get("/predictions/p1").respond(200, json=prediction("processing"))


def test_run_timeout_sends_cancel_and_raises_with_the_id(client: Client, api: respx.MockRouter) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    with pytest.raises(PredictionTimeout) as info:
        client.run(MODEL, {"prompt": "b"}, timeout=30)
    assert cancel.call_count == 1
    assert info.value.prediction_id == "p1"
    assert info.value.cancel_requested is True
    assert "cancel requested" in str(info.value)
    timeout = cancel.calls.last.request.extensions["timeout"]
    assert max(v for v in timeout.values() if v is not None) <= 2.0  # bounded


@pytest.mark.parametrize("status", [404, 405])
def test_cancel_not_supported_is_tolerated(client: Client, api: respx.MockRouter, status: int) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(status, text="<html>Not Found</html>")
    with pytest.raises(PredictionTimeout) as info:
        client.run(MODEL, {"prompt": "b"}, timeout=30)
    assert cancel.call_count == 1  # never retried
    assert info.value.cancel_requested is False


def test_ctrl_c_while_waiting_cancels_then_reraises(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))

    def interrupt(seconds: float) -> None:
        if len(ft.sleeps) == 3:
            raise KeyboardInterrupt

    ft.on_sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        client.run(MODEL, {"prompt": "b"})
    assert cancel.call_count == 1


def test_ctrl_c_during_a_poll_request_cancels_then_reraises(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))

    def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    api.get("/predictions/p1").mock(side_effect=interrupted)
    cancel = api.post("/predictions/p1/cancel").respond(405)
    with pytest.raises(KeyboardInterrupt):
        client.run(MODEL, {"prompt": "b"})
    assert cancel.call_count == 1


def test_a_raising_callback_cancels_and_propagates(client: Client, api: respx.MockRouter) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))

    def boom(_: object) -> None:
        raise RuntimeError("my callback broke")

    with pytest.raises(RuntimeError, match="my callback broke"):
        client.run(MODEL, {"prompt": "b"}, on_created=boom)
    assert cancel.call_count == 1


def test_a_failing_cancel_does_not_hide_the_original_error(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    _pending(api)
    api.post("/predictions/p1/cancel").mock(side_effect=httpx.ConnectError("down"))
    ft.on_sleep = lambda s: (_ for _ in ()).throw(KeyboardInterrupt) if len(ft.sleeps) == 2 else None
    with pytest.raises(KeyboardInterrupt):
        client.run(MODEL, {"prompt": "b"})


def test_wait_cancels_only_when_asked(client: Client, api: respx.MockRouter) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("processing"))
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    with pytest.raises(PredictionTimeout):
        client.predictions.wait("p1", timeout=5)
    assert cancel.call_count == 0
    with pytest.raises(PredictionTimeout):
        client.predictions.wait("p1", timeout=5, cancel_on_exit=True)
    assert cancel.call_count == 1


def test_terminal_outcomes_send_no_cancel(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("failed", error="x"))
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    with pytest.raises(Exception, match="failed"):
        client.run(MODEL, {"prompt": "b"})
    assert cancel.call_count == 0


async def test_task_cancellation_cancels_the_prediction_then_propagates(
    aclient: AsyncClient, api: respx.MockRouter
) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    created = asyncio.Event()
    real_sleep = asyncio.sleep

    async def slow_sleep(seconds: float) -> None:
        await real_sleep(3600)

    aclient._driver.sleep = slow_sleep
    task = asyncio.create_task(aclient.run(MODEL, {"prompt": "b"}, on_created=lambda p: created.set()))
    await created.wait()
    await real_sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancel.call_count == 1


async def test_async_run_timeout_sends_cancel(aclient: AsyncClient, api: respx.MockRouter) -> None:
    _pending(api)
    cancel = api.post("/predictions/p1/cancel").respond(200, json=prediction("canceled"))
    with pytest.raises(PredictionTimeout) as info:
        await aclient.run(MODEL, {"prompt": "b"}, timeout=12)
    assert info.value.prediction_id == "p1"
    assert cancel.call_count == 1


def test_a_flow_closed_unfinished_does_not_try_to_cancel(client: Client) -> None:
    from comet_replicate.core.effects import Http
    from comet_replicate.core.wait import deadline_for, wait

    flow = wait(
        client._state,
        "p1",
        deadline=deadline_for(client._state, 10),
        cancel_on_exit=True,
    )
    effect = next(flow)
    assert isinstance(effect, Http) and effect.method == "GET"
    flow.close()  # would raise RuntimeError if the flow yielded a cancel while closing
