"""Property: for any sequence of poll answers the wait ends exactly where the spec says it must."""

from __future__ import annotations

import random

import httpx
import respx
from comet_replicate import (
    Client,
    CometReplicateError,
    NotFoundError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)
from hypothesis import given
from hypothesis import strategies as st

from .conftest import BASE, FakeTime, _fake, prediction

OUT = ["https://replicate.delivery/x/out-0.webp"]
TERMINAL = {
    "succeeded": None,
    "failed": PredictionFailed,
    "canceled": PredictionCanceled,
    "aborted": PredictionAborted,
}
TRANSIENT = ["429", "500", "502", "503", "504", "html", "connect", "read_timeout", "cut"]
answers = st.one_of(
    st.sampled_from(["starting", "processing"]),
    st.sampled_from(TRANSIENT),
    st.sampled_from(list(TERMINAL)),
    st.sampled_from(["404", "queued", "SUCCEEDED", "deleted"]),
)


def _response(answer: str) -> httpx.Response | Exception:
    if (
        answer in ("starting", "processing")
        or answer in TERMINAL
        or answer in ("queued", "SUCCEEDED", "deleted")
    ):
        return httpx.Response(200, json=prediction(answer, output=OUT if answer == "succeeded" else None))
    if answer == "429":
        return httpx.Response(429, headers={"Retry-After": "1"}, json={"detail": "slow down"})
    if answer == "html":
        return httpx.Response(502, text="<html>bad gateway</html>")
    if answer == "connect":
        return httpx.ConnectError("refused")
    if answer == "read_timeout":
        return httpx.ReadTimeout("slow")
    if answer == "cut":
        return httpx.Response(200, content=b'{"id": "p1", "sta')
    if answer == "404":
        return httpx.Response(404, json={"detail": "Not found."})
    return httpx.Response(int(answer), json={"detail": "oops"})


def _expected(sequence: list[str]) -> tuple[type[BaseException] | None, int]:
    """The outcome the spec demands and how many GETs it takes."""
    for index, answer in enumerate(sequence):
        if answer in TERMINAL:
            return TERMINAL[answer], index + 1
        if answer == "404":
            return NotFoundError, index + 1
        if answer in ("queued", "SUCCEEDED", "deleted"):
            return UnexpectedStatus, index + 1
    return PredictionTimeout, -1


@given(st.lists(answers, max_size=25), st.integers(min_value=0, max_value=1000))
def test_wait_ends_exactly_where_the_answers_say(sequence: list[str], seed: int) -> None:
    ft = FakeTime()
    client = Client(api_key="k", base_url=BASE)
    _fake(client, ft)
    client._state.shared.rng = random.Random(seed)
    client._driver.sleep = ft.sleep
    pending_forever = [httpx.Response(200, json=prediction("processing"))] * 10_000
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        route = router.get("/predictions/p1").mock(
            side_effect=[_response(a) for a in sequence] + pending_forever
        )
        expected, calls = _expected(sequence)
        try:
            result = client.predictions.wait("p1", timeout=120)
        except CometReplicateError as exc:
            assert type(exc) is expected, (sequence, exc)
            assert exc.prediction_id == "p1"
        else:
            assert expected is None, sequence
            assert result.output == OUT
        if calls > 0:
            assert route.call_count == calls
    assert ft.now - 1000.0 <= 120.0 + 1e-6
    client.close()
