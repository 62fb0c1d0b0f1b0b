"""Waiting for a prediction, and `run` (create, then wait); the cancel on exit wraps either.

A `_Wait` holds the state of one wait (the prediction as last seen, the poll schedule, what the
duration estimator should learn); its flow polls until a terminal status or the deadline.
`with_cancel_on_exit` wraps a flow so that leaving it early sends one bounded best-effort cancel.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, TypeVar

from .._constants import CANCEL_AFTER_FROM_TIMEOUT, MIN_POLL_SLEEP, SYNC_MODE_MARGIN
from .._errors import (
    APIConnectionError,
    APIStatusError,
    CometReplicateError,
    ContractViolation,
    InternalServerError,
    PredictionAborted,
    PredictionCanceled,
    PredictionFailed,
    PredictionTimeout,
    RateLimitError,
)
from .create import create_raw
from .effects import Flow, Notify, Sleep
from .operations import Answer, best_effort_cancel, poll
from .pacing import RequestClass
from .parse import Unreadable
from .retry import Deadline, Failure, failure_of, parse_retry_after, total_seconds
from .schedule import PollSchedule
from .state import State
from .status import StatusClass, classify_status, outcome

if TYPE_CHECKING:
    from comet_replicate_api.models import Prediction

__all__ = ["CANCEL_AFTER_FROM_TIMEOUT", "deadline_for", "held_create", "run", "wait", "with_cancel_on_exit"]

T = TypeVar("T")
log = logging.getLogger("comet_replicate")
Callback = Callable[["Prediction"], object]

_TRANSIENT = (APIConnectionError, RateLimitError, InternalServerError, Unreadable)


def deadline_for(st: State, timeout: float | None) -> Deadline:
    """A total deadline starting now (`None`: no deadline)."""
    return Deadline(st.shared.clock(), total_seconds(timeout))


def _age(prediction: Prediction, wall_now: float) -> float:
    created = prediction.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    age = wall_now - created.timestamp()
    return age if 0.0 <= age < 86_400.0 else 0.0


def _snapshot(prediction: Prediction) -> tuple[str, object, object]:
    return str(prediction.status), prediction.logs, repr(prediction.output)


class _Wait:
    """The state of one wait, and its flow."""

    def __init__(self, st: State, target: Prediction | str, deadline: Deadline) -> None:
        shared = st.shared
        self.st = st
        self.deadline = deadline
        self.prediction: Prediction | None = None if isinstance(target, str) else target
        self.prediction_id = target if isinstance(target, str) else target.id
        self.max_polls = (
            None if deadline.timeout is None else math.ceil(deadline.timeout / MIN_POLL_SLEEP) + 16
        )
        self.polls = 0
        self.hint: float | None = None
        self.schedule = PollSchedule(st.config.tuning)
        self.fitted = False
        self.started = shared.created_local.get(self.prediction_id)
        self.timed_locally = self.started is not None  # only locally timed predictions teach the estimator
        self.last_pending_at = shared.clock() if self.prediction is not None else None

    def _timeout(self) -> PredictionTimeout:
        return PredictionTimeout(
            self.prediction_id,
            timeout=self.deadline.timeout if self.deadline.timeout is not None else math.inf,
            status=None if self.prediction is None else str(self.prediction.status),
            prediction=self.prediction,
        )

    def _settled(self) -> Prediction | None:
        """The outcome if the prediction as last seen is terminal (raising for all but success)."""
        prediction = self.prediction
        if prediction is None:
            return None
        cls = classify_status(prediction.status)
        if cls is not StatusClass.PENDING:
            if cls is StatusClass.SUCCEEDED and self.timed_locally and self.started is not None:
                self._learn(prediction.model, self.started)
            return outcome(prediction)
        if not self.fitted:
            self.fitted = True
            self.schedule.fit = self.st.shared.estimator.fit(prediction.model, self.st.config.tuning)
            if self.started is None:
                self.started = self.st.shared.clock() - _age(prediction, self.st.shared.wall_clock())
        return None

    def _learn(self, model: str, started: float) -> None:
        """Teach the estimator how long this prediction took, measured on the local clock.

        The finish lies between the last pending answer and the terminal one, so the midpoint is the
        estimate (without a pending answer, e.g. a sync-mode create that came back done, the time the
        answer arrived). Server-reported durations are not used: the schedule runs on the local clock,
        and a gateway's or emulator's notion of time may differ from it.
        """
        seen = self.st.shared.clock()
        last = self.last_pending_at
        finished = seen if last is None else (max(last, started) + seen) / 2.0
        self.st.shared.estimator.observe(model, finished - started)

    def _pause(self) -> Flow[None]:
        """Check the deadline, then sleep until the next poll is due."""
        clock, deadline = self.st.shared.clock, self.deadline
        now = clock()
        if self.started is None:
            self.started = now
        if deadline.expired(now) or (self.max_polls is not None and self.polls >= self.max_polls):
            raise self._timeout()
        if self.polls == 0 and self.prediction is None:
            return  # a bare id is fetched at once; a known prediction waits first
        delay = self.schedule.next_delay(
            now - self.started, self.st.shared.rng, hint=self.hint, remaining=deadline.remaining(now)
        )
        yield Sleep(max(delay, MIN_POLL_SLEEP))
        if deadline.expired(clock()):
            raise self._timeout()

    def _poll(self, on_update: Callback | None) -> Flow[None]:
        """One poll; a transient failure only leaves a Retry-After hint for the next pause."""
        self.polls += 1
        self.hint = None
        try:
            fresh, reply = yield from poll(self.st, self.prediction_id, self.deadline)
        except _TRANSIENT as exc:
            self.hint = exc.retry_after if isinstance(exc, APIStatusError) else None
            log.info("poll of %s failed transiently, still waiting: %s", self.prediction_id, exc)
            return
        self.hint = parse_retry_after(reply.headers, now_epoch=self.st.shared.wall_clock())
        changed = self.prediction is None or _snapshot(fresh) != _snapshot(self.prediction)
        self.prediction = fresh
        if classify_status(fresh.status) is StatusClass.PENDING:
            self.last_pending_at = self.st.shared.clock()
        if changed and on_update is not None:
            yield Notify(on_update, fresh)

    def flow(self, on_update: Callback | None, on_created: Callback | None) -> Flow[Prediction]:
        """Poll until terminal; return the prediction only if it succeeded.

        `on_created` is called once, with the first prediction known: at once when the wait starts
        from one, else after the first successful poll of the bare id.
        """
        try:
            while True:
                if on_created is not None and self.prediction is not None:
                    yield Notify(on_created, self.prediction)
                    on_created = None
                done = self._settled()
                if done is not None:
                    return done
                yield from self._pause()
                yield from self._poll(on_update)
        except PredictionTimeout:
            raise
        except CometReplicateError as exc:
            exc.attach(self.prediction_id, self.prediction)
            raise


def with_cancel_on_exit(st: State, prediction_id: str, flow: Flow[T]) -> Flow[T]:
    """`flow`, but leaving it early for any reason but a terminal status — the deadline, Ctrl-C,
    task cancellation, a callback raising, an API error on a poll — first sends one bounded
    best-effort cancel (a timeout then says whether it went through)."""
    try:
        return (yield from flow)
    except (PredictionFailed, PredictionCanceled, PredictionAborted):
        raise  # the server settled it
    except PredictionTimeout as exc:
        canceled = yield from best_effort_cancel(st, prediction_id)
        raise PredictionTimeout(
            prediction_id,
            timeout=exc.timeout,
            status=exc.status,
            prediction=exc.prediction,
            canceled=canceled,
        ) from None
    except GeneratorExit:
        raise  # the flow was closed unfinished (its driver is gone): nothing may be yielded now
    except BaseException as exc:
        canceled = yield from best_effort_cancel(st, prediction_id)
        exc.add_note(f"prediction {prediction_id}: cancel {'requested' if canceled else 'not confirmed'}")
        raise


def wait(
    st: State,
    target: Prediction | str,
    *,
    deadline: Deadline,
    on_update: Callback | None = None,
    on_created: Callback | None = None,
    cancel_on_exit: bool = False,
) -> Flow[Prediction]:
    """Poll until the prediction is terminal; return it only if it succeeded.

    Ends only on a terminal status, the deadline, or a non-transient error (401/403/404, a broken
    contract). Transient poll failures (connection errors, timeouts, 429, 5xx) that outlive their
    retries are waited out. With `cancel_on_exit`, leaving early for any reason (deadline, Ctrl-C,
    task cancellation, a callback raising) first sends one bounded best-effort cancel.
    """
    waiting = _Wait(st, target, deadline)
    flow = waiting.flow(on_update, on_created)
    if not cancel_on_exit:
        return (yield from flow)
    return (yield from with_cancel_on_exit(st, waiting.prediction_id, flow))


def _sync_wait(wait: int | None, remaining: float | None) -> int | None:
    """The `Prefer: wait` to ask for: never longer than the deadline allows (with the read margin)."""
    if wait is None or remaining is None:
        return wait
    held = min(wait, math.floor(remaining - SYNC_MODE_MARGIN))
    return held if held >= 1 else None


def _await_create_window(st: State, deadline: Deadline, wait: int | None) -> Flow[None]:
    """When every held-create slot is taken, sleep until the pacer would let a create go (nothing
    booked: the create's own request books and checks exactly), so the hold is decided then, when
    slots may be free again; unless the deadline ends first (the request then reports it). With a
    free slot there is nothing to wait for here (a bad input is refused at once)."""
    pacer, slots = st.shared.pacer, st.shared.sync_slots
    if pacer is None or wait is None or slots.held < slots.limit:
        return
    now = st.shared.clock()
    delay = pacer.delay(RequestClass.CREATE, now)
    remaining = deadline.remaining(now)
    if delay > 0.0 and (remaining is None or delay < remaining):
        yield Sleep(delay)


def _held_or_polled(
    st: State, sync_wait: int | None, create: Callable[[bool], Flow[Answer]]
) -> Flow[Prediction]:
    """The create of `run`: held in sync mode while a held-create slot is free (and the server has not
    refused `Prefer`), else without waiting. A held create whose connection could not be opened (too
    many open files, a gateway refusing more connections: it provably never left) is sent again
    without waiting, through the in-flight queue, never lost."""
    slots = st.shared.sync_slots
    if sync_wait is not None and st.shared.optional_headers_ok and slots.take():
        try:
            return (yield from create(True))[0]
        except APIConnectionError as exc:
            if failure_of(exc.__cause__) is not Failure.NOT_SENT:
                raise
            log.warning("a held create could not connect (%s); creating it without Prefer: wait", exc)
        finally:
            slots.give()
    return (yield from create(False))[0]


def held_create(
    st: State,
    model: str,
    input: object,
    *,
    wait: int | None,
    deadline: Deadline,
    cancel_after: float | str | None = None,
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
) -> Flow[Prediction]:
    """The create of `run` (also a batch's held create): in sync mode (`Prefer: wait`, at most `wait`
    seconds and never past the deadline) in one of the client's held-create slots when one is free,
    else without waiting; the prediction as the create answered it (terminal or not)."""
    yield from _await_create_window(st, deadline, wait)
    sync_wait = _sync_wait(wait, deadline.remaining(st.shared.clock()))
    return (
        yield from _held_or_polled(
            st,
            sync_wait,
            lambda hold: create_raw(
                st,
                model,
                input,
                wait=sync_wait if hold else None,
                cancel_after=cancel_after,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                deadline=deadline,
                held=hold,
            ),
        )
    )


def run(
    st: State,
    model: str,
    input: object,
    *,
    timeout: float | None,
    wait: int | None,
    cancel_after: float | str | None,
    on_created: Callback | None,
    on_update: Callback | None,
    webhook: str | None = None,
    webhook_events_filter: list[str] | None = None,
) -> Flow[Prediction]:
    """Create (in sync mode by default), report the id, wait; return the succeeded prediction.

    `on_created` fires once the create has answered with a prediction (before any poll); if the
    answer carried an id but broke the spec, it fires after the first poll of that id.

    Sync mode holds a connection until the prediction ends and answers with it: one request instead
    of a create and its polls. The create holds one of the client's `MAX_HELD_CREATES` slots (apart
    from the short requests' in-flight queue); when none is free, it is created without
    `Prefer: wait` and polled, so no prediction waits in the client for a connection (throughput is
    bounded by the API's limits, not the pool). A server that ignores `Prefer: wait` answers at once
    with a pending prediction, which is then polled the same way. The decision is taken when the
    create may be sent: a create the pacer holds back to the next window first waits for it.
    """
    deadline = deadline_for(st, timeout)
    if cancel_after == CANCEL_AFTER_FROM_TIMEOUT:
        cancel_after = None if deadline.timeout is None else max(5.0, deadline.timeout)
    target: Prediction | str
    try:
        target = yield from held_create(
            st,
            model,
            input,
            wait=wait,
            deadline=deadline,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
        )
    except ContractViolation as exc:
        if exc.prediction_id is None:
            raise
        # A paid create never ends in a parsing error: the id came back, so the wait takes over.
        log.warning(
            "the create answer breaks the spec (%s); waiting for %s by its id", exc, exc.prediction_id
        )
        target = exc.prediction_id
    except CometReplicateError as exc:
        if exc.prediction_id is None:
            raise
        # The id is known (a lost create's one match, found but not read) and the run ends here: the
        # prediction gets the bounded cancel every early exit sends.
        canceled = yield from best_effort_cancel(st, exc.prediction_id)
        exc.add_note(f"prediction {exc.prediction_id}: cancel {'requested' if canceled else 'not confirmed'}")
        raise
    waiting = _Wait(st, target, deadline)
    return (yield from with_cancel_on_exit(st, waiting.prediction_id, waiting.flow(on_update, on_created)))
