"""The pacer in the flows, driven with scripted replies on a fake clock (no HTTP, no sleeping).

What is proved: every attempt waits for its slot as a `Sleep` before its `Http`; creates and other
requests wait in separate lanes; a 429 is tried again (honouring Retry-After) for as long as the
deadline allows, whatever `max_retries` says, and surfaces only when the deadline cannot fit the
wait; a slot the deadline cannot reach is given back and the request is not sent; an interrupted
wait gives its slot back; a create is not sent when its slot would leave it too little of the deadline
for its answer; the cancel on exit is not paced; `run` holds a connection in sync mode only while
sync-mode slots are free, flags such a create to skip the in-flight queue, decides when the pacer lets
the create go, and a held create counts in the window from when it was written; an answer's
rate-limit headers reach the pacer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from comet_replicate import APITimeoutError, CreateOutcomeUnknown, InputValidationError, RateLimitError
from comet_replicate._constants import CREATE_MIN_TIME_LEFT, WINDOW_MARGIN
from comet_replicate._inputs import prepare_input
from comet_replicate.core.create import create_raw
from comet_replicate.core.effects import Flow, Http, Reply, Sleep
from comet_replicate.core.operations import best_effort_cancel, get_raw
from comet_replicate.core.pacing import Pacer, RateLimit, RequestClass, SyncSlots
from comet_replicate.core.request import create_floor
from comet_replicate.core.retry import Deadline
from comet_replicate.core.state import Config, Shared, State
from comet_replicate.core.wait import run

from tests.wrapper.conftest import prediction

MODEL = "black-forest-labs/flux-schnell"
BASE = "https://api.example.test/replicate/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CREATES = RateLimit(600)
OTHERS = RateLimit(3000)


def make_state(
    clock: Clock, *, create: RateLimit = CREATES, other: RateLimit = OTHERS, max_retries: int = 2
) -> State:
    config = Config(
        base_url=BASE,
        auth=lambda: {"Authorization": "Bearer k"},
        timeout=httpx.Timeout(10.0),
        max_retries=max_retries,
    )
    shared = Shared(
        clock=clock,
        wall_clock=lambda: 1_773_314_838.0 + clock.now,
        rng=random.Random(0),
        pacer=Pacer(create=create, other=other),
    )
    return State(config, shared)


Answer = Reply | BaseException | Callable[[Http], Reply]


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
    content = b"" if body is None else json.dumps(body).encode()
    return Reply(status, httpx.Headers({"content-type": "application/json", **(headers or {})}), content)


def drive(flow: Flow[Any], clock: Clock, script: Sequence[Answer]) -> tuple[Any, list[Any]]:
    """Run a flow: sleeps move the clock, each Http gets the next scripted answer; returns the
    result and every effect the flow yielded."""
    answers = list(script)
    seen: list[Any] = []
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            return stop.value, seen
        seen.append(effect)
        value = error = None
        if isinstance(effect, Sleep):
            clock.now += effect.seconds
        elif isinstance(effect, Http):
            answer = answers.pop(0)
            if isinstance(answer, BaseException):
                error = answer
            else:
                value = answer(effect) if callable(answer) else answer


def sleeps(effects: list[Any]) -> list[float]:
    return [e.seconds for e in effects if isinstance(e, Sleep)]


def created() -> Reply:
    return reply(201, prediction())


def throttled(after: float) -> Reply:
    body = {"detail": f"Request was throttled. Expected available in {after:g} seconds.", "status": 429}
    return reply(429, body, {"Retry-After": f"{after:g}"})


def test_a_create_beyond_the_window_sleeps_for_its_slot_before_it_is_sent() -> None:
    clock = Clock()
    st = make_state(clock, create=RateLimit(2, 60.0))
    for _ in range(2):
        _, effects = drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
        assert sleeps(effects) == []
    _, effects = drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
    assert isinstance(effects[0], Sleep) and isinstance(effects[1], Http)
    assert effects[0].seconds == pytest.approx(60.0 * 1.025)


def test_creates_and_gets_wait_in_separate_lanes() -> None:
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0), other=RateLimit(1, 60.0))
    drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
    _, effects = drive(get_raw(st, "p1"), clock, [reply(200, prediction())])
    assert sleeps(effects) == []  # the full create lane does not hold back a get
    _, effects = drive(get_raw(st, "p1"), clock, [reply(200, prediction())])
    assert sleeps(effects) == [pytest.approx(61.5)]


def test_429s_are_tried_again_beyond_max_retries_while_the_deadline_allows() -> None:
    clock = Clock()
    st = make_state(clock, max_retries=1)
    deadline = Deadline(clock.now, 60.0)
    flow = create_raw(st, MODEL, {"prompt": "a"}, deadline=deadline)
    result, effects = drive(flow, clock, [throttled(2)] * 5 + [created()])
    assert result[0].id == "p1"
    assert sum(isinstance(e, Http) for e in effects) == 6
    assert sleeps(effects) == [2.0] * 5  # each Retry-After honoured, no extra pacing wait
    state = st.shared.pacer.state(clock.now)  # type: ignore[union-attr]
    assert state.create.throttled == 5 and state.create.allowed < 600


def test_a_429_surfaces_when_the_deadline_cannot_fit_the_wait() -> None:
    clock = Clock()
    st = make_state(clock)
    deadline = Deadline(clock.now, 4.0)
    with pytest.raises(RateLimitError) as info:
        drive(get_raw(st, "p1", deadline=deadline), clock, [throttled(2), throttled(3)])
    assert info.value.retry_after == 3.0
    assert clock.now == pytest.approx(1002.0)  # waited the first hint, not the second


def test_without_a_deadline_a_429_hint_beyond_the_patience_surfaces_at_once() -> None:
    clock = Clock()
    st = make_state(clock)
    with pytest.raises(RateLimitError):
        drive(get_raw(st, "p1"), clock, [throttled(3600)])
    assert clock.now == 1000.0


def test_max_retries_zero_means_one_try_even_on_a_429() -> None:
    clock = Clock()
    st = make_state(clock)
    with pytest.raises(RateLimitError):
        drive(get_raw(st, "p1", max_retries=0), clock, [throttled(1)])


def test_a_slot_beyond_the_deadline_is_given_back_and_nothing_is_sent() -> None:
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
    deadline = Deadline(clock.now, 10.0)
    with pytest.raises(APITimeoutError, match="create rate limit"):
        drive(create_raw(st, MODEL, {"prompt": "b"}, deadline=deadline), clock, [])
    assert st.shared.pacer.state(clock.now).create.queued == 0  # type: ignore[union-attr]


def test_a_create_whose_slot_leaves_too_little_of_the_deadline_is_not_sent() -> None:
    """Issue 18: sent in the last 0.1 s, a create is answered after the deadline: paid for, its id
    lost, and no time left to find it in the list. It is not sent at all (nothing is in doubt)."""
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
    deadline = Deadline(clock.now, 61.5 + 0.1)  # the slot comes 61.5 s from now
    with pytest.raises(APITimeoutError, match="keeps for its answer") as info:
        drive(create_raw(st, MODEL, {"prompt": "b"}, deadline=deadline), clock, [])
    assert not isinstance(info.value, CreateOutcomeUnknown)
    assert clock.now == 1000.0  # it did not even wait for the slot
    assert st.shared.pacer.state(clock.now).create.queued == 0  # type: ignore[union-attr]


def test_a_get_whose_slot_leaves_little_of_the_deadline_is_still_sent() -> None:
    clock = Clock()
    st = make_state(clock, other=RateLimit(1, 60.0))
    drive(get_raw(st, "p1"), clock, [reply(200, prediction())])
    deadline = Deadline(clock.now, 61.5 + 0.1)
    _, effects = drive(get_raw(st, "p1", deadline=deadline), clock, [reply(200, prediction())])
    assert sum(isinstance(e, Http) for e in effects) == 1


def test_a_create_retried_after_a_429_is_not_sent_when_the_wait_leaves_too_little() -> None:
    clock = Clock()
    st = make_state(clock)
    deadline = Deadline(clock.now, 2.1)
    with pytest.raises(APITimeoutError, match="keeps for its answer") as info:
        drive(create_raw(st, MODEL, {"prompt": "a"}, deadline=deadline), clock, [throttled(2)])
    assert not isinstance(info.value, CreateOutcomeUnknown)  # the one try that left got a 429


@pytest.mark.parametrize("timeout", [0.2, 0.5, 30.0])
def test_a_create_is_sent_at_once_whatever_its_deadline(timeout: float) -> None:
    """The floor is at most half the whole deadline, so a short deadline still sends its first try."""
    clock = Clock()
    st = make_state(clock)
    result, effects = drive(
        create_raw(st, MODEL, {"prompt": "a"}, deadline=Deadline(clock.now, timeout)), clock, [created()]
    )
    assert result[0].id == "p1" and sleeps(effects) == []
    assert create_floor(Deadline(clock.now, timeout)) == min(CREATE_MIN_TIME_LEFT, timeout / 2)


def test_a_lost_creates_lookup_is_not_held_back_by_the_clients_own_pacing() -> None:
    """Issue 18: with the other lane's window full (its rate cut by 429s on polls), the list request
    that finds a lost create goes at once instead of failing "not sent" before the deadline."""
    clock = Clock()
    paced = make_state(clock, other=RateLimit(1, 60.0))
    st = State(paced.config._replace(reconcile_unknown_creates=True), paced.shared)
    drive(get_raw(st, "p1"), clock, [reply(200, prediction())])  # the other lane: full for 60 s
    sent_at = datetime.fromtimestamp(st.shared.wall_clock(), tz=UTC)
    item = {**prediction(), "input": prepare_input(MODEL, {"prompt": "a"}), "created_at": sent_at.isoformat()}
    page = reply(200, {"results": [item], "next": None, "previous": None})
    deadline = Deadline(clock.now, 10.0)
    lost = httpx.ReadTimeout("the answer never came")
    result, effects = drive(create_raw(st, MODEL, {"prompt": "a"}, deadline=deadline), clock, [lost, page])
    assert result[0].id == "p1"
    assert sleeps(effects) == [] and [e.method for e in effects if isinstance(e, Http)] == ["POST", "GET"]


def test_an_interrupted_wait_for_a_slot_gives_the_slot_back() -> None:
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])
    flow = create_raw(st, MODEL, {"prompt": "b"})
    assert isinstance(next(flow), Sleep)
    assert st.shared.pacer.state(clock.now).create.queued == 1  # type: ignore[union-attr]
    with pytest.raises(KeyboardInterrupt):
        flow.throw(KeyboardInterrupt())
    assert st.shared.pacer.state(clock.now).create.queued == 0  # type: ignore[union-attr]


def test_the_cancel_on_exit_is_not_paced() -> None:
    clock = Clock()
    st = make_state(clock, other=RateLimit(1, 60.0))
    drive(get_raw(st, "p1"), clock, [reply(200, prediction())])
    ok, effects = drive(best_effort_cancel(st, "p1"), clock, [reply(200, prediction("canceled"))])
    assert ok and sleeps(effects) == []


def test_without_a_pacer_nothing_waits_and_429s_are_still_tried_again() -> None:
    clock = Clock()
    st = make_state(clock, max_retries=1)
    st.shared.pacer = None
    result, effects = drive(get_raw(st, "p1"), clock, [throttled(1)] * 3 + [reply(200, prediction())])
    assert result[0].id == "p1" and sleeps(effects) == [1.0] * 3


def _prefer(effect: Http) -> str | None:
    value: str | None = httpx.Headers(effect.headers).get("prefer")
    return value


def test_run_holds_a_connection_in_sync_mode_only_while_sync_slots_are_free() -> None:
    clock = Clock()
    st = make_state(clock)
    st.shared.sync_slots = SyncSlots(limit=1)
    done = reply(201, prediction("succeeded", output=["https://x.test/a.png"]))
    running = reply(201, prediction("starting"))
    sent: list[str | None] = []

    def answer(r: Reply) -> Callable[[Http], Reply]:
        def respond(effect: Http) -> Reply:
            sent.append(_prefer(effect))
            return r

        return respond

    def start() -> Flow[Any]:
        options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
        return run(st, MODEL, {"prompt": "a"}, timeout=100, wait=60, **options)

    first = start()
    assert isinstance(next(first), Http)  # the first run's create is on the wire, holding its slot
    assert st.shared.sync_slots.held == 1
    # A second run meanwhile creates without Prefer: wait and polls.
    _, effects = drive(
        start(),
        clock,
        [answer(running), reply(200, prediction("succeeded", output=["https://x.test/b.png"]))],
    )
    assert sent == [None]
    assert any(isinstance(e, Http) and e.method == "GET" for e in effects)
    # The first one answers; its slot is free again and the next run holds one.
    with pytest.raises(StopIteration):
        first.send(done)
    assert st.shared.sync_slots.held == 0
    drive(start(), clock, [answer(done)])
    assert sent == [None, "wait=60"]


def test_a_held_create_is_flagged_to_skip_the_in_flight_queue_and_a_polled_one_is_not() -> None:
    clock = Clock()
    st = make_state(clock)
    st.shared.sync_slots = SyncSlots(limit=1)

    def start() -> Flow[Any]:
        options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
        return run(st, MODEL, {"prompt": "a"}, timeout=100, wait=60, **options)

    first = start()
    held = next(first)
    assert isinstance(held, Http) and held.held and _prefer(held) == "wait=60"
    second = start()
    polled = next(second)
    assert isinstance(polled, Http) and not polled.held and _prefer(polled) is None
    first.close()
    second.close()


def test_run_decides_to_hold_when_the_create_may_go_not_when_it_was_queued() -> None:
    """A create paced to the next window sleeps first, then takes the sync slot that the creates of
    the first window gave back meanwhile (deciding at once would have polled it)."""
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    st.shared.sync_slots = SyncSlots(limit=1)
    done = reply(201, prediction("succeeded", output=["https://x.test/a.png"]))
    options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
    first = run(st, MODEL, {"prompt": "a"}, timeout=300, wait=60, **options)
    assert isinstance(next(first), Http)  # holds the only slot
    second = run(st, MODEL, {"prompt": "b"}, timeout=300, wait=60, **options)
    pause = next(second)
    assert isinstance(pause, Sleep) and pause.seconds > 59.0  # waits for the window, undecided
    clock.now += 5.0
    with pytest.raises(StopIteration):
        first.send(done)  # answered: the slot is free again
    clock.now += pause.seconds
    create = second.send(None)
    while isinstance(create, Sleep):  # the exact check may ask for the margin's last moments
        clock.now += create.seconds
        create = second.send(None)
    assert isinstance(create, Http) and create.held and _prefer(create) == "wait=60"
    second.close()


def test_a_held_create_counts_in_the_window_from_when_it_was_sent() -> None:
    """Answered 20 s after it was written (the prediction ran that long), a held create leaves the
    create window 60 s after it was sent, not 60 s after its answer."""
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    held_done = Reply(
        201,
        httpx.Headers({"content-type": "application/json"}),
        json.dumps(prediction("succeeded", output=["https://x.test/a.png"])).encode(),
        held_for=20.0,
    )

    def later(effect: Http) -> Reply:
        clock.now += 20.0
        return held_done

    options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
    start = clock.now
    drive(run(st, MODEL, {"prompt": "a"}, timeout=300, wait=60, **options), clock, [later])
    assert st.shared.pacer is not None
    free_at = clock.now + st.shared.pacer.delay(RequestClass.CREATE, clock.now)
    assert free_at == pytest.approx(start + 60.0 * (1 + WINDOW_MARGIN))


def _sleeps_of_the_next_get_after(answer: Reply) -> list[float]:
    """The sleeps a second GET makes when the first one was answered with `answer` (its rate-limit
    hint, if any, reached the pacer)."""
    clock = Clock()
    st = make_state(clock)
    drive(get_raw(st, "p1"), clock, [answer])
    _, effects = drive(get_raw(st, "p1"), clock, [reply(200, prediction())])
    return sleeps(effects)


def test_rate_limit_headers_on_an_answer_reach_the_pacer() -> None:
    spent = reply(200, prediction(), headers={"ratelimit-remaining": "0", "ratelimit-reset": "7"})
    # the second GET waited for the reset instead of getting a 429
    assert _sleeps_of_the_next_get_after(spent) == [pytest.approx(7.0)]


@pytest.mark.parametrize(
    "names",
    [("X-RateLimit-Remaining", "X-RateLimit-Reset"), ("RateLimit-Remaining", "RateLimit-Reset")],
)
def test_rate_limit_headers_reach_the_pacer_whatever_their_case_or_prefix(names: tuple[str, str]) -> None:
    """Servers send the hint names capitalised (`X-RateLimit-*`): the quick look for a hint must
    still find them, under either prefix."""
    remaining, reset = names
    hinted = reply(200, prediction(), headers={remaining: "0", reset: "5"})
    assert _sleeps_of_the_next_get_after(hinted) == [pytest.approx(5.0)]


def test_rate_limit_headers_in_a_plain_mapping_reach_the_pacer() -> None:
    hint = {"ratelimit-remaining": "0", "ratelimit-reset": "3"}
    hinted = Reply(200, hint, json.dumps(prediction()).encode())
    assert _sleeps_of_the_next_get_after(hinted) == [pytest.approx(3.0)]


def test_an_answer_without_rate_limit_headers_leaves_the_pacer_unhinted() -> None:
    plain = reply(200, prediction(), headers={"x-request-id": "ratelimit-remaining", "retry-after": "9"})
    assert _sleeps_of_the_next_get_after(plain) == []


def test_a_held_create_that_cannot_connect_is_created_again_without_waiting_and_polled() -> None:
    """Too many open files, or a gateway refusing more connections: the held create provably never
    left, so it goes again without Prefer: wait through the queue, and its slot is free again."""
    clock = Clock()
    st = make_state(clock, max_retries=0)
    st.shared.sync_slots = SyncSlots(limit=1)
    refused = httpx.ConnectError("[Errno 24] Too many open files")
    options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
    result, effects = drive(
        run(st, MODEL, {"prompt": "a"}, timeout=100, wait=60, **options),
        clock,
        [
            refused,
            reply(201, prediction("starting")),
            reply(200, prediction("succeeded", output=["https://x.test/a.png"])),
        ],
    )
    creates = [e for e in effects if isinstance(e, Http) and e.method == "POST"]
    assert [(e.held, _prefer(e)) for e in creates] == [(True, "wait=60"), (False, None)]
    assert result.status == "succeeded"
    assert st.shared.sync_slots.held == 0


def test_a_held_create_that_may_have_arrived_is_not_sent_again() -> None:
    clock = Clock()
    base = make_state(clock, max_retries=0)
    st = State(base.config._replace(reconcile_unknown_creates=False), base.shared)
    st.shared.sync_slots = SyncSlots(limit=1)
    options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
    with pytest.raises(CreateOutcomeUnknown):
        drive(
            run(st, MODEL, {"prompt": "a"}, timeout=100, wait=60, **options),
            clock,
            [httpx.ReadError("connection reset")],
        )
    assert st.shared.sync_slots.held == 0


def test_a_bad_input_is_refused_at_once_even_when_the_create_window_is_full() -> None:
    clock = Clock()
    st = make_state(clock, create=RateLimit(1, 60.0))
    drive(create_raw(st, MODEL, {"prompt": "a"}), clock, [created()])  # the window is now full
    options: dict[str, Any] = {"cancel_after": None, "on_created": None, "on_update": None}
    flow = run(st, MODEL, {"prompt": "a", "num_outputs": "many"}, timeout=300, wait=60, **options)
    with pytest.raises(InputValidationError):
        next(flow)  # no sleep for the window first: a held-create slot is free
