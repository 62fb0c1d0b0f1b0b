"""Waiting (`core.wait.wait`): every branch of the poll loop, on a fake clock with scripted answers."""

from __future__ import annotations

import pytest
from comet_replicate import (
    CometReplicateError,
    ContractViolation,
    NotFoundError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    UnexpectedStatus,
)
from comet_replicate._constants import MIN_POLL_SLEEP
from comet_replicate.core.schedule import PollTuning
from comet_replicate.core.wait import deadline_for, wait

from ._script import Script, done, prediction, reply


def _wait(script: Script, target: object = "p1", timeout: float | None = 30, **options: object) -> object:
    st = options.pop("state", None) or script.state()
    return script.run(wait(st, target, deadline=deadline_for(st, timeout), **options))  # type: ignore[arg-type]


def _parsed(status: str = "starting", **extra: object) -> object:
    from comet_replicate._generated import prediction_from_dict

    return prediction_from_dict(prediction(status, **extra))


def test_a_bare_id_is_fetched_at_once_then_polled_until_it_succeeds() -> None:
    script = Script.of(reply(200, prediction("starting")), reply(200, prediction("processing")), done())
    got = _wait(script)
    assert got.status == "succeeded"  # type: ignore[attr-defined]
    assert len(script.requests) == 3 and len(script.sleeps) == 2  # no sleep before the first GET


def test_a_known_prediction_waits_before_its_first_poll() -> None:
    script = Script.of(done())
    _wait(script, _parsed())
    assert len(script.sleeps) == 1 and len(script.requests) == 1


def test_a_terminal_prediction_returns_without_a_request() -> None:
    script = Script.of()
    got = _wait(script, _parsed("succeeded", output=["https://x/y.png"]))
    assert got.id == "p1" and script.requests == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("failed", PredictionFailed),
        ("canceled", PredictionCanceled),
        ("aborted", PredictionAborted),
        ("exploded", UnexpectedStatus),
    ],
)
def test_every_other_terminal_status_raises_its_typed_error(status: str, error: type[Exception]) -> None:
    script = Script.of(reply(200, prediction(status)))
    with pytest.raises(error) as info:
        _wait(script)
    assert info.value.prediction_id == "p1"  # type: ignore[attr-defined]


def test_transient_poll_failures_are_waited_out_and_a_retry_after_hint_spaces_the_next_poll() -> None:
    busy = reply(503, {"detail": "busy"}, headers={"retry-after": "4", "content-type": "application/json"})
    script = Script.of(busy, reply(200, raw=b"{"), done())
    got = _wait(script, state=Script.state(script, max_retries=0))
    assert got.status == "succeeded"  # type: ignore[attr-defined]
    assert script.sleeps[0] >= 4.0  # the hint of the failed poll is a floor for the next sleep


def test_a_retry_after_on_a_pending_answer_is_a_floor_for_the_next_sleep() -> None:
    pending = reply(
        200, prediction("processing"), headers={"retry-after": "3", "content-type": "application/json"}
    )
    script = Script.of(pending, done())
    _wait(script)
    assert script.sleeps == [pytest.approx(3.0)]


def test_a_non_transient_error_ends_the_wait_with_the_id_attached() -> None:
    script = Script.of(reply(200, prediction("processing")), reply(404, {"detail": "Not found."}))
    with pytest.raises(NotFoundError) as info:
        _wait(script)
    assert info.value.prediction_id == "p1"
    assert info.value.prediction is not None and info.value.prediction.status == "processing"


def test_a_poll_about_another_prediction_ends_the_wait() -> None:
    script = Script.of(reply(200, prediction(id="p2")))
    with pytest.raises(ContractViolation):
        _wait(script)


def test_the_deadline_ends_the_wait_with_the_last_status() -> None:
    script = Script.of(*(reply(200, prediction("processing")) for _ in range(200)))
    with pytest.raises(PredictionTimeout) as info:
        _wait(script, timeout=5)
    assert info.value.status == "processing" and info.value.cancel_requested is None
    assert sum(script.sleeps) <= 5.0 + 1e-9
    assert len(script.answers) > 0  # it stopped polling


def test_the_deadline_is_checked_after_each_sleep() -> None:
    script = Script.of(reply(200, prediction("processing")))
    with pytest.raises(PredictionTimeout):
        _wait(script, timeout=0.05)
    assert len(script.requests) == 1


def test_a_frozen_clock_still_ends_the_wait_by_the_poll_budget() -> None:
    script = Script.of(*(reply(200, prediction("processing")) for _ in range(200)))
    script.advance_on_sleep = False
    with pytest.raises(PredictionTimeout):
        _wait(script, timeout=1)
    assert len(script.requests) <= 1 / MIN_POLL_SLEEP + 16


def test_no_deadline_waits_until_terminal() -> None:
    script = Script.of(*(reply(200, prediction("processing")) for _ in range(30)), done())
    assert _wait(script, timeout=None).status == "succeeded"  # type: ignore[attr-defined]


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        _wait(Script.of(), timeout=0)


def test_on_update_sees_each_change_once() -> None:
    seen: list[str] = []
    script = Script.of(
        reply(200, prediction("processing")),
        reply(200, prediction("processing")),
        reply(200, prediction("processing", logs="step 1")),
        done(),
    )
    _wait(script, on_update=lambda p: seen.append(f"{p.status}:{p.logs}"))
    assert seen == ["processing:", "processing:step 1", "succeeded:"]


def test_with_cancel_on_exit_the_deadline_sends_a_cancel_and_says_so() -> None:
    def answer(effect: object) -> object:
        return (
            reply(200, prediction("canceled"))
            if effect.url.endswith("/cancel")
            else reply(200, prediction("processing"))
        )  # type: ignore[attr-defined]

    script = Script.of(*([answer] * 100))
    with pytest.raises(PredictionTimeout) as info:
        _wait(script, timeout=2, cancel_on_exit=True)
    assert info.value.cancel_requested is True
    assert script.paths()[-1] == "POST /predictions/p1/cancel"


def test_a_cancel_that_fails_on_the_deadline_reports_canceled_false() -> None:
    def answer(effect: object) -> object:
        return (
            reply(405, {"detail": "no"})
            if effect.url.endswith("/cancel")
            else reply(200, prediction("processing"))
        )  # type: ignore[attr-defined]

    script = Script.of(*([answer] * 100))
    with pytest.raises(PredictionTimeout) as info:
        _wait(script, timeout=2, cancel_on_exit=True)
    assert info.value.cancel_requested is False


def test_an_interrupt_mid_wait_sends_the_cancel_then_propagates() -> None:
    script = Script.of(reply(200, prediction("processing")), reply(200, prediction("canceled")))
    script.interrupt_on_sleep = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        _wait(script, cancel_on_exit=True)
    assert script.paths() == ["GET /predictions/p1", "POST /predictions/p1/cancel"]


def test_without_cancel_on_exit_an_interrupt_sends_nothing() -> None:
    script = Script.of(reply(200, prediction("processing")))
    script.interrupt_on_sleep = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        _wait(script)
    assert script.paths() == ["GET /predictions/p1"]


def test_a_callback_raising_sends_the_cancel_then_propagates() -> None:
    def explode(prediction: object) -> None:
        raise RuntimeError("callback failed")

    script = Script.of(reply(200, prediction("processing")), reply(200, prediction("canceled")))
    with pytest.raises(RuntimeError, match="callback failed"):
        _wait(script, on_update=explode, cancel_on_exit=True)
    assert script.paths()[-1] == "POST /predictions/p1/cancel"


def test_a_flow_closed_unfinished_yields_nothing_more() -> None:
    st = Script.of().state()
    flow = wait(st, "p1", deadline=deadline_for(st, 10), cancel_on_exit=True)
    next(flow)
    flow.close()  # would raise RuntimeError if the flow yielded its cancel while closing


def test_a_locally_timed_success_teaches_the_estimator() -> None:
    script = Script.of(reply(200, prediction("processing")), done())
    st = script.state()
    st.shared.remember_created("p1", script.clock.now)
    _wait(script, state=st)
    samples = st.shared.estimator.samples("black-forest-labs/flux-schnell")
    assert len(samples) == 1 and 0 < samples[0] <= sum(script.sleeps)


def test_a_prediction_not_created_here_teaches_nothing_but_uses_its_age() -> None:
    script = Script.of(done())
    st = script.state()
    for value in (2.0, 2.1, 2.2):
        st.shared.estimator.observe("black-forest-labs/flux-schnell", value)
    script.clock.now += 1.0  # the prediction was created a second ago (by its created_at)
    _wait(script, _parsed("processing"), state=st)
    assert st.shared.estimator.samples("black-forest-labs/flux-schnell") == [2.0, 2.1, 2.2]
    first = PollTuning().first * (1 + PollTuning().jitter)
    assert script.sleeps[0] > first  # the learned schedule, not the no-history first poll


@pytest.mark.parametrize(
    "answer",
    [
        reply(404, {"detail": "Not found."}),
        reply(202, prediction("processing")),
        reply(401, {"detail": "bad key"}),
    ],
)
def test_with_cancel_on_exit_an_api_error_mid_wait_still_sends_the_cancel(answer: object) -> None:
    script = Script.of(reply(200, prediction("processing")), answer, reply(200, prediction("canceled")))  # type: ignore[arg-type]
    with pytest.raises(CometReplicateError) as info:
        _wait(script, cancel_on_exit=True)
    assert info.value.prediction_id == "p1"  # type: ignore[attr-defined]
    assert script.paths()[-1] == "POST /predictions/p1/cancel"


@pytest.mark.parametrize("status", ["failed", "canceled", "aborted"])
def test_a_terminal_outcome_is_never_followed_by_a_cancel(status: str) -> None:
    script = Script.of(reply(200, prediction(status)))
    with pytest.raises((PredictionFailed, PredictionCanceled, PredictionAborted)):
        _wait(script, cancel_on_exit=True)
    assert script.paths() == ["GET /predictions/p1"]


def test_on_created_fires_once_with_the_first_prediction_known() -> None:
    seen: list[str] = []
    script = Script.of(reply(200, prediction("processing")), done())
    _wait(script, on_created=lambda p: seen.append(p.status))
    assert seen == ["processing"]
