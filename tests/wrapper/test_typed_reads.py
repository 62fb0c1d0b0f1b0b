"""The typed reads of a Prediction give one plain type each, whatever shape the server sent."""

from __future__ import annotations

from typing import Any

import pytest
from comet_replicate import (
    Client,
    ContractViolation,
    FileOutput,
    Prediction,
    error_of,
    logs_of,
    output_urls,
    status_of,
)

from .conftest import BASE, KEY, prediction

URL = "https://replicate.delivery/xezq/a/out-0.webp"


def _p(**fields: Any) -> Prediction:
    body = prediction("succeeded", **fields)
    for name in [k for k, v in fields.items() if v is _MISSING]:
        del body[name]
    return Prediction.from_dict(body)


_MISSING = object()


@pytest.mark.parametrize(
    ("output", "urls"),
    [([URL, URL + "?2"], [URL, URL + "?2"]), (URL, [URL]), (None, []), ([], []), (_MISSING, [])],
    ids=["list", "one-url", "null", "empty", "no-output-key"],
)
def test_output_urls_is_always_a_list_of_urls(output: object, urls: list[str]) -> None:
    assert output_urls(_p(output=output)) == urls


def test_output_urls_refuses_an_output_that_is_not_file_urls() -> None:
    with pytest.raises(ContractViolation, match="output"):
        output_urls(_p(output=[{"text": "hi"}]))


@pytest.mark.parametrize(("logs", "text"), [("step 1\nstep 2", "step 1\nstep 2"), (None, ""), (_MISSING, "")])
def test_logs_of_is_always_a_string(logs: object, text: str) -> None:
    assert logs_of(_p(logs=logs)) == text


@pytest.mark.parametrize(("error", "text"), [("NSFW", "NSFW"), (None, None), ("", None), (_MISSING, None)])
def test_error_of_is_the_text_or_none(error: object, text: str | None) -> None:
    assert error_of(_p(error=error)) == text


def test_status_of_is_a_plain_string_even_for_an_unknown_status() -> None:
    assert status_of(_p()) == "succeeded" and type(status_of(_p())) is str
    assert status_of(Prediction.from_dict(prediction("warming_up"))) == "warming_up"


def test_client_files_are_file_outputs_of_the_prediction() -> None:
    with Client(api_key=KEY, base_url=BASE) as client:
        files = client.files(_p(output=[URL]))
        assert files == [FileOutput(URL)] and files[0].prediction_id == "p1"
        assert client.files(_p(output=None)) == []
