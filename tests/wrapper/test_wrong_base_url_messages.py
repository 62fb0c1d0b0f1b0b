"""A create that lands on the wrong route says why: a base URL without /replicate/v1, an HTML page
instead of the API, or no such model there; and a problem body whose title and detail repeat is
not shown twice ("Not found: Not found.")."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from comet_replicate import APIStatusError, Client, NotFoundError
from comet_replicate._errors import status_error

from .conftest import BASE, KEY

MODEL = "black-forest-labs/flux-schnell"


def test_a_base_url_without_the_api_path_is_named_in_the_404(comet_emulator_app: Any) -> None:
    client = comet_emulator_app.comet_client(base_url=comet_emulator_app.base_url)  # no /replicate/v1
    with pytest.raises(NotFoundError) as caught:
        client.predictions.create(MODEL, {"prompt": "x"})
    message = str(caught.value)
    assert "the base URL http://emulator.test is probably missing /replicate/v1" in message
    assert "https://api.cometapi.com/replicate/v1" in message
    assert "Not found: Not found" not in message and "Not found." in message


def test_an_unknown_model_on_replicates_route_names_the_model(comet_emulator_app: Any) -> None:
    client = comet_emulator_app.comet_client(base_url=comet_emulator_app.replicate_base_url)
    with pytest.raises(
        NotFoundError, match=r"no model black-forest-labs/flux-nope at http://emulator\.test/v1"
    ):
        client.predictions.create("black-forest-labs/flux-nope", {"prompt": "x"})


def test_cometapis_own_model_not_found_keeps_its_message(comet_emulator_app: Any) -> None:
    client = comet_emulator_app.comet_client()
    with pytest.raises(NotFoundError) as caught:
        client.predictions.create("black-forest-labs/flux-nope", {"prompt": "x"})
    assert caught.value.code == "model_not_found"
    assert "base URL" not in str(caught.value) and "model black-forest-labs/flux-nope not found" in str(
        caught.value
    )


def _answering(status: int, text: str, content_type: str) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=text, headers={"content-type": content_type})

    return Client(api_key=KEY, base_url=BASE, http_client=httpx.Client(transport=httpx.MockTransport(answer)))


def test_an_html_page_on_the_create_route_says_it_is_not_the_api() -> None:
    client = _answering(405, "<!DOCTYPE html><html><body>Method Not Allowed</body></html>", "text/html")
    with pytest.raises(
        APIStatusError, match=r"an HTML page answered, not the API: check the base URL https://api\."
    ):
        client.predictions.create(MODEL, {"prompt": "x"})


def test_a_404_on_get_gets_no_base_url_hint() -> None:
    client = _answering(404, '{"title": "Not found", "detail": "Not found."}', "application/problem+json")
    with pytest.raises(NotFoundError) as caught:
        client.predictions.get("abc")
    assert "base URL" not in str(caught.value) and ": Not found. (prediction abc)" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": "Not found", "detail": "Not found."}, "Not found."),
        ({"title": "NOT FOUND.", "detail": "not found"}, "not found"),
        ({"title": "Invalid input", "detail": "prompt is required"}, "Invalid input: prompt is required"),
    ],
)
def test_a_problem_title_repeated_by_its_detail_is_said_once(body: dict[str, str], message: str) -> None:
    error = status_error(404, method="GET", url="u", headers={}, content=json.dumps(body).encode())
    assert error.message == message
