"""`run` (`core.wait.run`): create in sync mode, report the id, wait; cancel on the way out."""

from __future__ import annotations

import pytest
from comet_replicate import PredictionTimeout
from comet_replicate.core.wait import CANCEL_AFTER_FROM_TIMEOUT, run

from ._script import MODEL, Script, done, prediction, reply

CREATE = f"POST /models/{MODEL}/predictions"


def _run(script: Script, **options: object) -> object:
    defaults: dict[str, object] = {
        "timeout": 300.0,
        "wait": 60,
        "cancel_after": CANCEL_AFTER_FROM_TIMEOUT,
        "on_created": None,
        "on_update": None,
    }
    defaults.update(options)
    return script.run(run(script.state(), MODEL, {"prompt": "boat"}, **defaults))  # type: ignore[arg-type]


def test_a_create_answered_finished_needs_no_poll() -> None:
    script = Script.of(reply(201, prediction("succeeded", output=["https://d.test/a.webp"])))
    got = _run(script)
    assert got.status == "succeeded"  # type: ignore[attr-defined]
    assert script.paths() == [CREATE]
    sent = script.requests[0]
    assert sent.headers["prefer"] == "wait=60" and sent.headers["cancel-after"] == "300s"


def test_an_unfinished_create_is_polled_and_on_created_fires_with_the_id_first() -> None:
    events: list[str] = []
    script = Script.of(reply(201, prediction("starting")), reply(200, prediction("processing")), done())
    _run(
        script,
        on_created=lambda p: events.append(f"created {p.id}"),
        on_update=lambda p: events.append(p.status),
    )
    assert events == ["created p1", "processing", "succeeded"]
    assert script.paths() == [CREATE, "GET /predictions/p1", "GET /predictions/p1"]


@pytest.mark.parametrize(
    ("timeout", "wait", "prefer"),
    [
        (30.0, 60, "wait=25"),
        (5.5, 60, None),
        (None, 60, "wait=60"),
        (300.0, None, None),
        (300.0, 10, "wait=10"),
    ],
)
def test_the_hold_never_outlasts_the_deadline(
    timeout: float | None, wait: int | None, prefer: str | None
) -> None:
    script = Script.of(reply(201, prediction("succeeded", output=["https://d.test/a.webp"])))
    _run(script, timeout=timeout, wait=wait)
    assert script.requests[0].headers.get("prefer") == prefer


@pytest.mark.parametrize(
    ("timeout", "cancel_after", "header"),
    [
        (30.0, CANCEL_AFTER_FROM_TIMEOUT, "30s"),
        (2.0, CANCEL_AFTER_FROM_TIMEOUT, "5s"),
        (None, CANCEL_AFTER_FROM_TIMEOUT, None),
        (30.0, None, None),
        (30.0, "2m", "2m"),
        (30.0, 45, "45s"),
    ],
)
def test_cancel_after_follows_the_timeout_unless_given(
    timeout: float | None, cancel_after: object, header: str | None
) -> None:
    script = Script.of(reply(201, prediction("succeeded", output=["https://d.test/a.webp"])))
    _run(script, timeout=timeout, cancel_after=cancel_after)
    assert script.requests[0].headers.get("cancel-after") == header


def test_the_deadline_after_create_cancels_and_the_error_carries_the_id() -> None:
    def answer(effect: object) -> object:
        if effect.url.endswith("/cancel"):  # type: ignore[attr-defined]
            return reply(200, prediction("canceled"))
        return reply(200, prediction("processing"))

    script = Script.of(reply(201, prediction("starting")), *([answer] * 200))
    with pytest.raises(PredictionTimeout) as info:
        _run(script, timeout=10.0)
    assert info.value.prediction_id == "p1" and info.value.cancel_requested is True
    assert script.paths()[-1] == "POST /predictions/p1/cancel"


def test_an_on_created_that_raises_still_cancels_the_new_prediction() -> None:
    def refuse(prediction: object) -> None:
        raise RuntimeError("could not save the id")

    script = Script.of(reply(201, prediction("starting")), reply(200, prediction("canceled")))
    with pytest.raises(RuntimeError):
        _run(script, on_created=refuse)
    assert script.paths() == [CREATE, "POST /predictions/p1/cancel"]
