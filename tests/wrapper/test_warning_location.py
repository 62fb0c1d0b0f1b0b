"""The unknown-field warning names the caller's own line, whichever public path led to it, so the
shown location and `-W ...:module` filters point at user code, not inside comet_replicate."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from comet_replicate import AsyncClient, Client, UnknownInputFieldWarning, UnknownModelWarning, _inputs
from comet_replicate._inputs import prepare_input, validate_input

SCHNELL = "black-forest-labs/flux-schnell"
TYPO = {"prompt": "x", "aspect_ration": "16:9"}


@pytest.fixture(autouse=True)
def _fresh_warn_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_inputs, "_WARNED", set())
    yield


def _only(caught: list[warnings.WarningMessage], category: type[Warning]) -> warnings.WarningMessage:
    mine = [w for w in caught if issubclass(w.category, category)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    return mine[0]


def test_prepare_input_warning_points_at_the_calling_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        prepare_input(SCHNELL, TYPO)
    shown = _only(caught, UnknownInputFieldWarning)
    assert (shown.filename, shown.lineno) == (__file__, line)


def test_validate_input_warning_points_at_the_calling_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        validate_input(SCHNELL, TYPO)
    shown = _only(caught, UnknownInputFieldWarning)
    assert (shown.filename, shown.lineno) == (__file__, line)


def test_unknown_model_hint_points_at_the_calling_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        prepare_input("black-forest-labs/flux-schnel", {"prompt": "x"})
    shown = _only(caught, UnknownModelWarning)
    assert (shown.filename, shown.lineno) == (__file__, line)


def test_a_create_through_the_client_warns_at_the_users_create_line(comet_inprocess_client: Client) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        prediction = comet_inprocess_client.predictions.create(SCHNELL, input=TYPO)
    assert prediction.id
    shown = _only(caught, UnknownInputFieldWarning)
    assert (shown.filename, shown.lineno) == (__file__, line)


async def test_an_async_run_warns_at_the_users_await_line(comet_inprocess_async_client: AsyncClient) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line_after()
        output: Any = await comet_inprocess_async_client.run(SCHNELL, input=TYPO)
    assert output, "the run finished with outputs"
    shown = _only(caught, UnknownInputFieldWarning)
    assert (shown.filename, shown.lineno) == (__file__, line)


def _line_after() -> int:
    """The line number of the statement following the caller's call of this function."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1
