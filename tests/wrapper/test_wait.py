"""Waiting: a fail-closed status machine, bounded by a deadline, that rides out transient failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from comet_replicate import (
    AuthenticationError,
    Client,
    ContractViolation,
    NotFoundError,
    OutputExpired,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionError,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)

from .conftest import CREATE_PATH, FakeTime, prediction

MODEL = "black-forest-labs/flux-schnell"
OUT = ["https://replicate.delivery/xezq/abc/out-0.webp"]


def _polls(api: respx.MockRouter, *bodies: dict[str, Any]) -> respx.Route:
    return api.get("/predictions/p1").mock(side_effect=[httpx.Response(200, json=b) for b in bodies])


def test_succeeded_returns_the_prediction_after_polling(client: Client, api: respx.MockRouter) -> None:
    route = _polls(api, prediction("starting"), prediction("processing"), prediction("succeeded", output=OUT))
    p = client.predictions.wait("p1")
    assert p.output == OUT
    assert route.call_count == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        ("failed", PredictionFailed),
        ("canceled", PredictionCanceled),
        ("aborted", PredictionAborted),
        ("exploded", UnexpectedStatus),
        ("", UnexpectedStatus),
    ],
)
def test_every_other_terminal_or_unknown_status_raises_with_the_prediction(
    client: Client, api: respx.MockRouter, status: str, cls: type[PredictionError]
) -> None:
    route = _polls(
        api, prediction("processing"), prediction(status, error="NSFW content detected", logs="seed 9\n")
    )
    with pytest.raises(cls) as info:
        client.predictions.wait("p1")
    assert info.value.prediction_id == "p1"
    assert info.value.prediction is not None and str(info.value.prediction.status) == status
    assert route.call_count == 2  # no further polling after an unknown status


def test_failed_carries_error_text_and_logs(client: Client, api: respx.MockRouter) -> None:
    _polls(api, prediction("failed", error="NSFW content detected", logs="Using seed: 99\n"))
    with pytest.raises(PredictionFailed) as info:
        client.predictions.wait("p1")
    assert info.value.error == "NSFW content detected"
    assert info.value.logs == "Using seed: 99\n"
    assert "NSFW content detected" in str(info.value) and "p1" in str(info.value)


def test_run_returns_files_for_one_url_and_for_a_list(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("succeeded", output=OUT))
    files = client.run(MODEL, {"prompt": "b"})
    assert [f.url for f in files] == OUT
    api.post("/models/black-forest-labs/flux-pro/predictions").respond(
        201, json=prediction("succeeded", output="https://replicate.delivery/x/output.jpg")
    )
    files = client.run("black-forest-labs/flux-pro", {"prompt": "b"})
    assert [f.url for f in files] == ["https://replicate.delivery/x/output.jpg"]


def test_run_canceled_raises_instead_of_returning_nothing(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("canceled"))
    with pytest.raises(PredictionCanceled):
        client.run(MODEL, {"prompt": "b"})


def test_sync_mode_answer_still_processing_with_partial_output_is_not_done(
    client: Client, api: respx.MockRouter
) -> None:
    create = api.post(CREATE_PATH).respond(
        201, json=prediction("processing", output=["https://x/partial.webp"])
    )
    route = _polls(api, prediction("succeeded", output=OUT))
    files = client.run(MODEL, {"prompt": "b"})
    assert [f.url for f in files] == OUT
    assert route.call_count == 1
    assert create.calls.last.request.headers["prefer"] == "wait=60"


def test_run_sync_mode_is_clamped_to_the_deadline(client: Client, api: respx.MockRouter) -> None:
    create = api.post(CREATE_PATH).respond(201, json=prediction("succeeded", output=OUT))
    client.run(MODEL, {"prompt": "b"}, timeout=20)
    assert create.calls.last.request.headers["prefer"] == "wait=15"
    assert create.calls.last.request.headers["cancel-after"] == "20s"
    client.run(MODEL, {"prompt": "b"}, timeout=3, wait=None, cancel_after=None)
    assert "prefer" not in create.calls.last.request.headers
    assert "cancel-after" not in create.calls.last.request.headers


def test_succeeded_with_data_removed_is_output_expired(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("succeeded", output=None, data_removed=True))
    with pytest.raises(OutputExpired, match="data_removed") as info:  # issue 12.7 (was ContractViolation)
        client.run(MODEL, {"prompt": "b"})
    assert info.value.prediction_id == "p1"


def test_deadline_fires_with_the_id_and_last_status(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    api.get("/predictions/p1").respond(200, json=prediction("processing"))
    with pytest.raises(PredictionTimeout) as info:
        client.predictions.wait("p1", timeout=10)
    assert info.value.prediction_id == "p1"
    assert info.value.status == "processing"
    assert "p1" in str(info.value) and "10 s" in str(info.value)
    assert ft.now - 1000.0 <= 10.0 + 1e-6  # never slept past the deadline
    assert not api.routes or all(
        c.request.method == "GET" for c in api.calls
    )  # wait() does not cancel by default


def test_deadline_holds_even_if_the_clock_never_moves(client: Client, api: respx.MockRouter) -> None:
    client._driver.sleep = lambda s: None  # a frozen clock: iterations are counted against the deadline
    route = api.get("/predictions/p1").respond(200, json=prediction("processing"))
    with pytest.raises(PredictionTimeout):
        client.predictions.wait("p1", timeout=1)
    assert route.call_count <= 1 / 0.01 + 16


def test_transient_poll_failures_do_not_end_the_wait(client: Client, api: respx.MockRouter) -> None:
    route = api.get("/predictions/p1").mock(
        side_effect=[httpx.Response(200, json=prediction("processing"))]
        + [httpx.Response(503, text="busy")] * 3
        + [httpx.ConnectError("down")] * 3
        + [httpx.Response(429, json={"detail": "slow down", "retry_after": 1})] * 3
        + [httpx.ReadTimeout("slow")] * 3
        + [httpx.Response(502, text="<html>bad gateway</html>")] * 3
        + [httpx.Response(200, json=prediction("succeeded", output=OUT))]
    )
    assert client.predictions.wait("p1").output == OUT
    assert route.call_count == 17


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError)]
)
def test_non_transient_poll_errors_end_the_wait_with_the_id(
    client: Client, api: respx.MockRouter, status: int, cls: type[Exception]
) -> None:
    route = api.get("/predictions/p1").mock(
        side_effect=[
            httpx.Response(200, json=prediction("processing")),
            httpx.Response(status, json={"detail": "no"}),
        ]
    )
    with pytest.raises(cls) as info:
        client.predictions.wait("p1")
    assert getattr(info.value, "prediction_id", None) == "p1"
    assert route.call_count == 2


def test_urls_get_and_cancel_are_never_followed(client: Client, api: respx.MockRouter) -> None:
    elsewhere = respx.route(host="api.replicate.com")
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    _polls(api, prediction("processing"), prediction("succeeded", output=OUT))
    client.run(MODEL, {"prompt": "b"})
    assert not elsewhere.called
    assert {c.request.url.host for c in api.calls} == {"api.cometapi.com"}
    assert all(c.request.url.path.startswith("/replicate/v1/") for c in api.calls)


def test_on_created_runs_before_any_poll_and_on_update_on_each_change(
    client: Client, api: respx.MockRouter
) -> None:
    events: list[str] = []
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))

    def poll(request: httpx.Request) -> httpx.Response:
        events.append("poll")
        bodies = [prediction("processing"), prediction("processing"), prediction("succeeded", output=OUT)]
        return httpx.Response(200, json=bodies[min(len([e for e in events if e == "poll"]) - 1, 2)])

    api.get("/predictions/p1").mock(side_effect=poll)
    client.run(
        MODEL,
        {"prompt": "b"},
        on_created=lambda p: events.append(f"created {p.id}"),
        on_update=lambda p: events.append(f"update {p.status}"),
    )
    assert events == ["created p1", "poll", "update processing", "poll", "poll", "update succeeded"]


def test_errors_after_creation_carry_the_prediction_id(client: Client, api: respx.MockRouter) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    api.get("/predictions/p1").respond(200, json={"id": "p1", "status": "processing"})  # no model, input…
    with pytest.raises(ContractViolation) as info:
        client.run(MODEL, {"prompt": "b"})
    assert info.value.prediction_id == "p1"


def test_learned_schedule_polls_near_the_expected_finish(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    for _ in range(5):
        client.estimator.observe(MODEL, 3.0)
    finish_at = ft.now + 3.0

    def poll(request: httpx.Request) -> httpx.Response:
        done = ft.now >= finish_at
        return httpx.Response(
            200, json=prediction("succeeded", output=OUT) if done else prediction("processing")
        )

    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    route = api.get("/predictions/p1").mock(side_effect=poll)
    client.run(MODEL, {"prompt": "b"}, wait=None)
    assert ft.sleeps[0] > 1.0  # slept through the start, where finishing is unlikely
    assert route.call_count <= 25
    assert ft.now - finish_at <= 0.165  # noticed within 5 % of the typical 3 s (+ 10 % jitter)


def test_finished_predictions_teach_the_estimator_on_the_local_clock(
    client: Client, api: respx.MockRouter, ft: FakeTime
) -> None:
    api.post(CREATE_PATH).respond(201, json=prediction("starting"))
    route = _polls(
        api,
        prediction("processing"),
        # the server's own timing is ignored: gateways and emulators may run on another clock
        prediction("succeeded", output=OUT, metrics={"predict_time": 99.0, "total_time": 120.0}),
    )
    client.run(MODEL, {"prompt": "b"}, wait=None)
    first, second = ft.sleeps
    # finished somewhere between the last pending answer and the terminal one: the midpoint
    assert client.estimator.samples(MODEL) == [pytest.approx(first + second / 2)]
    route.mock(return_value=httpx.Response(200, json=prediction("succeeded", output=OUT)))
    client._state.shared.created_local.clear()
    client.resume("p1")  # not timed locally: teaches nothing
    assert len(client.estimator.samples(MODEL)) == 1


def test_resume_waits_for_an_existing_prediction_and_returns_files(
    client: Client, api: respx.MockRouter
) -> None:
    _polls(api, prediction("processing"), prediction("succeeded", output=OUT))
    files = client.resume("p1")
    assert [f.url for f in files] == OUT


def test_wait_without_a_deadline_only_when_asked(client: Client, api: respx.MockRouter) -> None:
    _polls(api, *([prediction("processing")] * 30), prediction("succeeded", output=OUT))
    assert client.predictions.wait("p1", timeout=None).output == OUT
    with pytest.raises(ValueError):
        client.predictions.wait("p1", timeout=0)


def test_polls_cut_short_are_waited_out(client: Client, api: respx.MockRouter) -> None:
    cut = httpx.Response(200, content=httpx.Response(200, json=prediction("processing")).content[:30])
    route = api.get("/predictions/p1").mock(
        side_effect=[cut] * 4 + [httpx.Response(200, json=prediction("succeeded", output=OUT))]
    )
    assert client.predictions.wait("p1").output == OUT
    assert route.call_count == 5
