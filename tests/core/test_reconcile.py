"""Reconciling a lost create (issue 18 item 3): the list route is read for predictions created since
shortly before the create was sent, and only an exact match of model and prepared input counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from comet_replicate import CreateOutcomeUnknown
from comet_replicate._constants import RECONCILE_CLOCK_SKEW, RECONCILE_MAX_PAGES, RECONCILE_MAX_SECONDS
from comet_replicate._inputs import input_sha256, prepare_input
from comet_replicate.core.create import create_raw
from comet_replicate.core.effects import Http, Reply
from comet_replicate.core.reconcile import reconcile
from comet_replicate.core.retry import Deadline
from comet_replicate.core.wait import run

from ._script import BASE, CREATED_EPOCH, MODEL, FakeClock, Script, done, prediction, reply

INPUT = {"prompt": "a boat", "num_outputs": 1}
PREPARED = prepare_input(MODEL, dict(INPUT))
LOST = httpx.ReadTimeout("the answer never came")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def listed(id: str, *, at: float = CREATED_EPOCH, model: str = MODEL, input: Any = None) -> dict[str, Any]:
    """A list item: a full prediction created at epoch `at`."""
    return prediction(
        "processing", id=id, model=model, input=PREPARED if input is None else input, created_at=_iso(at)
    )


def page(*items: dict[str, Any], next: str | None = None) -> Reply:
    return reply(200, {"results": list(items), "next": next, "previous": None})


def _state(script: Script, **config: Any) -> Any:
    return script.state(reconcile_unknown_creates=True, **config)


def _create(script: Script, **config: Any) -> Any:
    return script.run(create_raw(_state(script, **config), MODEL, dict(INPUT)))


def _query(effect: Http) -> dict[str, list[str]]:
    return parse_qs(urlsplit(effect.url).query)


def test_one_match_is_the_created_prediction() -> None:
    script = Script.of(
        LOST,
        page(
            listed("other-model", model="black-forest-labs/flux-dev"),
            listed("mine"),
            listed("other-input", input={**PREPARED, "prompt": "a cat"}),
        ),
    )
    created, _ = _create(script)
    assert created.id == "mine"
    assert script.paths()[0].startswith("POST /models/")
    assert script.requests[1].method == "GET" and script.requests[1].url.startswith(f"{BASE}/predictions?")


def test_the_match_uses_the_prepared_input_in_canonical_form() -> None:
    reordered = dict(reversed(list(PREPARED.items())))
    script = Script.of(LOST, page(listed("mine", input=reordered)))
    assert _create(script)[0].id == "mine"


def test_run_carries_on_with_the_match_and_on_created_fires() -> None:
    created: list[str] = []
    script = Script.of(LOST, page(listed("mine")), done("mine"))
    flow = run(
        _state(script),
        MODEL,
        dict(INPUT),
        timeout=120,
        wait=None,
        cancel_after=None,
        on_created=lambda p: created.append(p.id),
        on_update=None,
    )
    assert script.run(flow).id == "mine"
    assert created == ["mine"]
    assert script.paths()[-1] == "GET /predictions/mine"


def test_two_identical_creates_name_both_candidates_and_never_guess() -> None:
    script = Script.of(LOST, page(listed("second", at=CREATED_EPOCH + 1), listed("first")))
    with pytest.raises(CreateOutcomeUnknown) as info:
        _create(script)
    error = info.value
    assert error.candidate_ids == ["second", "first"]
    assert "2 listed predictions match" in str(error) and "second, first" in str(error)
    assert error.input_sha256 == input_sha256(PREPARED)


@pytest.mark.parametrize("skew", [-RECONCILE_CLOCK_SKEW + 0.5, RECONCILE_CLOCK_SKEW])
def test_a_server_clock_skewed_by_up_to_30_s_still_matches(skew: float) -> None:
    script = Script.of(LOST, page(listed("mine", at=CREATED_EPOCH + skew)))
    assert _create(script)[0].id == "mine"
    asked = _query(script.requests[1])["created_after"][0]
    assert asked == _iso(CREATED_EPOCH - RECONCILE_CLOCK_SKEW)


def test_an_item_older_than_the_window_is_not_a_match_and_ends_the_read() -> None:
    """A server that ignores created_after: the read stops at the first older item (newest first)."""
    script = Script.of(
        LOST,
        page(
            listed("too-old", at=CREATED_EPOCH - RECONCILE_CLOCK_SKEW - 5),
            next=f"{BASE}/predictions?cursor=x",
        ),
    )
    with pytest.raises(CreateOutcomeUnknown, match="most likely does not exist") as info:
        _create(script)
    assert info.value.candidate_ids == []
    assert len(script.requests) == 2


def test_pagination_reads_past_the_first_page_on_our_own_base_url() -> None:
    elsewhere = "https://api.replicate.com/v1/predictions?cursor=cD0x&created_after=x"
    script = Script.of(
        LOST,
        page(*[listed(f"n{i}", input={"prompt": str(i)}) for i in range(3)], next=elsewhere),
        page(listed("mine")),
    )
    assert _create(script)[0].id == "mine"
    second = script.requests[2]
    assert second.url == f"{BASE}/predictions?cursor=cD0x&created_after=x"


def test_a_match_on_an_earlier_page_is_not_taken_until_the_window_is_read() -> None:
    script = Script.of(LOST, page(listed("a"), next=f"{BASE}/predictions?cursor=2"), page(listed("b")))
    with pytest.raises(CreateOutcomeUnknown) as info:
        _create(script)
    assert info.value.candidate_ids == ["a", "b"]


def test_no_match_says_the_prediction_most_likely_does_not_exist() -> None:
    script = Script.of(LOST, page(listed("x", input={"prompt": "other"})))
    with pytest.raises(CreateOutcomeUnknown, match="most likely does not exist") as info:
        _create(script)
    assert isinstance(info.value.__cause__, Exception) and "never came" in str(info.value.__cause__)


@pytest.mark.parametrize("status", [404, 405])
def test_a_server_without_the_list_route_cannot_reconcile(status: int) -> None:
    script = Script.of(LOST, reply(status, {"detail": "Not found"}))
    with pytest.raises(CreateOutcomeUnknown, match="this server cannot reconcile") as info:
        _create(script)
    assert str(status) in str(info.value) and info.value.candidate_ids == []
    assert len(script.requests) == 2  # a 404/405 is not retried


def test_the_list_request_goes_through_the_retry_path_of_a_get() -> None:
    script = Script.of(LOST, reply(503, {"detail": "busy"}), page(listed("mine")))
    assert _create(script)[0].id == "mine"
    assert len(script.requests) == 3 and script.sleeps


def test_a_failed_list_leaves_the_outcome_open() -> None:
    script = Script.of(LOST, reply(401, {"detail": "Unauthenticated"}))
    with pytest.raises(CreateOutcomeUnknown, match=r"not finished .*the prediction may exist"):
        _create(script)


def test_the_read_stops_at_its_page_cap() -> None:
    pages = [
        page(listed(f"x{i}", input={"prompt": "no"}), next=f"{BASE}/predictions?cursor={i}")
        for i in range(20)
    ]
    script = Script.of(LOST, *pages)
    with pytest.raises(CreateOutcomeUnknown, match=f"stopped after {RECONCILE_MAX_PAGES} pages"):
        _create(script)
    assert len(script.requests) == 1 + RECONCILE_MAX_PAGES


def test_reconciliation_stays_within_the_callers_deadline() -> None:
    clock = FakeClock()
    start = clock.now

    def slow_loss(effect: Http) -> BaseException:
        clock.now += 50.0  # the create held 50 s of a 60 s deadline before its answer was lost
        return LOST

    script = Script([slow_loss, *[reply(503, {"detail": "busy"})] * 20], clock)
    flow = run(
        _state(script),
        MODEL,
        dict(INPUT),
        timeout=60,
        wait=None,
        cancel_after=None,
        on_created=None,
        on_update=None,
    )
    with pytest.raises(CreateOutcomeUnknown, match="not finished"):
        script.run(flow)
    listing = script.requests[1:]
    assert listing and all(r.total is not None and r.total <= 10.0 for r in listing)
    assert clock.now <= start + 60.0


def test_reconciliation_has_its_own_time_cap_without_a_deadline() -> None:
    script = Script.of(LOST, *[reply(503, {"detail": "busy"})] * 40)
    with pytest.raises(CreateOutcomeUnknown, match="not finished"):
        _create(script, max_retries=30)
    assert all(r.total is not None and r.total <= RECONCILE_MAX_SECONDS for r in script.requests[1:])
    assert script.clock.now <= 1000.0 + RECONCILE_MAX_SECONDS


def test_no_time_left_sends_no_list_request() -> None:
    script = Script.of()
    error = CreateOutcomeUnknown(
        MODEL, input_sha256=input_sha256(PREPARED), sent_at=CREATED_EPOCH, reason="lost"
    )
    with pytest.raises(CreateOutcomeUnknown, match="no time was left"):
        script.run(reconcile(_state(script), error, deadline=Deadline(script.clock.now - 10, 5.0)))
    assert script.requests == []


def test_a_match_that_is_not_a_full_prediction_is_fetched_by_id() -> None:
    bare = {"id": "mine", "model": MODEL, "input": PREPARED, "created_at": _iso(CREATED_EPOCH)}
    script = Script.of(LOST, page(bare), reply(200, prediction("processing", id="mine")))
    assert _create(script)[0].id == "mine"
    assert script.paths()[-1] == "GET /predictions/mine"


def test_turned_off_the_create_raises_at_once() -> None:
    script = Script.of(LOST)
    with pytest.raises(CreateOutcomeUnknown) as info:
        script.run(create_raw(script.state(reconcile_unknown_creates=False), MODEL, dict(INPUT)))
    assert info.value.reconciliation is None and len(script.requests) == 1


def test_on_demand_reconcile_of_a_kept_error() -> None:
    script = Script.of(page(listed("mine")))
    error = CreateOutcomeUnknown(
        MODEL, input_sha256=input_sha256(PREPARED), sent_at=CREATED_EPOCH, reason="lost"
    )
    found, _ = script.run(reconcile(script.state(), error))
    assert found.id == "mine"


def test_reconcile_takes_only_a_lost_create() -> None:
    script = Script.of()
    with pytest.raises(TypeError, match="CreateOutcomeUnknown"):
        script.run(reconcile(script.state(), ValueError("x")))  # type: ignore[arg-type]
    assert script.requests == []


def test_run_cancels_the_one_match_it_found_but_could_not_read() -> None:
    """The run ends without a prediction, but the id is known: it gets the bounded exit cancel."""
    bare = {"id": "mine", "model": MODEL, "input": PREPARED, "created_at": _iso(CREATED_EPOCH)}
    script = Script.of(
        LOST,
        page(bare),
        reply(404, {"detail": "Not found."}),
        reply(200, prediction("canceled", id="mine")),
    )
    flow = run(
        _state(script),
        MODEL,
        dict(INPUT),
        timeout=120,
        wait=None,
        cancel_after=None,
        on_created=None,
        on_update=None,
    )
    with pytest.raises(CreateOutcomeUnknown) as info:
        script.run(flow)
    assert info.value.prediction_id == "mine"
    assert info.value.candidate_ids == ["mine"]
    assert script.paths()[-1] == "POST /predictions/mine/cancel"
