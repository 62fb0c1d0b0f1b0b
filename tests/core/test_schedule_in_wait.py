"""The poll schedule as a wait lives it: on the fake clock, through `core.wait.wait`.

Each test scripts a prediction that finishes at a chosen time and reads the sleeps the wait
yielded: where polling starts, how long a gap may get, what a model's history changes. Expected
values are the documented ones (PollSchedule's docstring), written out as literals.
"""

from __future__ import annotations

import math
from typing import Any

from comet_replicate.core.effects import Http, Reply
from comet_replicate.core.state import State
from comet_replicate.core.wait import deadline_for, wait

from ._script import MODEL, Script, done, prediction, reply


def _finishing_at(script: Script, finish: float, model: str = MODEL, id: str = "p1") -> list[Any]:
    """Answers for every poll: processing until the fake clock reaches `finish`, then succeeded."""

    def answer(effect: Http) -> Reply:
        if script.clock.now >= finish:
            return reply(200, prediction("succeeded", id=id, model=model, output=["https://x.test/o.png"]))
        return reply(200, prediction("processing", id=id, model=model))

    return [answer] * 2000


def _timed_wait(
    script: Script, st: State, duration: float, model: str = MODEL, id: str = "p1"
) -> list[float]:
    """Create (locally timed) a prediction lasting `duration`, wait for it; the sleeps it took."""
    start = script.clock.now
    st.shared.remember_created(id, start)
    script.answers = _finishing_at(script, start + duration, model, id)
    before = len(script.sleeps)
    target = wait(st, id, deadline=deadline_for(st, 600))
    script.run(target)
    return script.sleeps[before:]


def _learn(st: State, model: str, *durations: float) -> None:
    for seconds in durations:
        st.shared.estimator.observe(model, seconds)


# --------------------------------------------------------------------------- with history


def test_a_model_with_history_is_first_polled_at_its_fifth_percentile() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 10.0, 10.0, 10.0)
    # Three equal samples: spread shrunk to the prior, (8 · 0.35² + 0) / (8 + 3 − 1) = 0.098, widened
    # by (1 + 1/3): sd = 0.3615; the 5th percentile is 10 · e^(−1.645 · 0.3615) = 5.517 s.
    sleeps = _timed_wait(script, st, 10.0)
    assert math.isclose(sleeps[0], 5.517, abs_tol=0.005)  # the bare id is fetched at once, then this


def test_no_gap_of_a_learned_wait_exceeds_450ms_even_far_past_the_history() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 30.0, 28.0, 32.0)
    sleeps = _timed_wait(script, st, 120.0)  # history says ~30 s; this one runs for two minutes
    gaps = sleeps[1:]  # after the sleep to the start quantile
    assert len(gaps) > 200
    assert max(gaps) <= 0.45
    assert min(gaps[-50:]) >= 0.405  # far past the history: at the bound (jitter only shortens it)


def test_the_detection_delay_of_a_learned_wait_stays_under_450ms() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 12.0, 11.0, 13.0)
    for k, duration in enumerate((9.0, 11.7, 12.3, 14.9, 20.0)):
        start = script.clock.now
        _timed_wait(script, st, duration, id=f"p{k}")
        assert 0.0 <= script.clock.now - (start + duration) <= 0.45


def test_the_gap_grows_with_each_models_typical_duration() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, "m/short", 2.0, 2.0, 2.0)
    _learn(st, "m/long", 8.0, 8.0, 8.0)
    short = _timed_wait(script, st, 1.9, model="m/short", id="s1")[1:]
    long = _timed_wait(script, st, 7.5, model="m/long", id="l1")[1:]
    # 5 % of the typical duration, ± 10 % jitter: 100 ms for 2 s, 400 ms for 8 s
    assert short and all(0.09 <= g <= 0.11 for g in short)
    assert long and all(0.36 <= g <= 0.44 for g in long)


def test_a_prediction_overrunning_its_history_is_polled_less_often_not_more() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 3.0, 3.0, 3.0)
    sleeps = _timed_wait(script, st, 8.0)
    elapsed, early, late = 0.0, [], []
    for gap in sleeps:
        elapsed += gap
        (early if elapsed < 3.0 else late if elapsed > 6.0 else []).append(gap)
    assert max(early[1:]) <= 0.165  # 5 % of the typical 3 s (+ 10 %)
    assert min(late) >= 0.27  # past 6 s: 5 % of the time already waited (− 10 %)


# --------------------------------------------------------------------------- without history


def test_without_history_the_wait_backs_off_from_100ms_to_1s() -> None:
    script = Script.of()
    st = script.state()
    sleeps = _timed_wait(script, st, 20.0)
    polls = sleeps  # the bare id is fetched at once, then polled after each of these
    assert 0.09 <= polls[0] <= 0.11 and 0.135 <= polls[1] <= 0.165  # 100 ms, then × 1.5 (± 10 %)
    assert max(polls) <= 1.1  # the 1 s cap, 10 % long at most
    assert min(polls[-5:]) >= 0.9


def test_two_finished_predictions_are_not_history_enough() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 10.0, 10.0)
    sleeps = _timed_wait(script, st, 3.0)
    assert sleeps[0] <= 0.11  # polled cold, from 100 ms; not a sleep to the 5th percentile


def test_a_model_learns_from_its_own_waits_and_only_its_own() -> None:
    script = Script.of()
    st = script.state()
    for k in range(3):
        cold = _timed_wait(script, st, 6.0, id=f"w{k}")
        assert cold[0] <= 0.11  # no history yet: polled from 100 ms
    learned = _timed_wait(script, st, 6.0, id="w3")
    # Three waits of 6 s, each timed to the midpoint of its last gap (≤ 1 s): the 5th percentile of
    # their fit lies past 3 s, so the fourth wait sleeps that long before its first poll.
    assert learned[0] > 3.0
    other = _timed_wait(script, st, 6.0, model="m/other", id="o1")
    assert other[0] <= 0.11  # another model has no history of its own


def test_a_retry_after_on_a_poll_still_holds_with_history() -> None:
    script = Script.of()
    st = script.state()
    _learn(st, MODEL, 2.0, 2.0, 2.0)
    st.shared.remember_created("p1", script.clock.now)
    script.answers = [
        reply(200, prediction("processing")),
        reply(
            200,
            prediction("processing"),
            headers={"content-type": "application/json", "retry-after": "3"},
        ),
        done(),
    ]
    script.run(wait(st, "p1", deadline=deadline_for(st, 60)))
    assert script.sleeps[-1] == 3.0
