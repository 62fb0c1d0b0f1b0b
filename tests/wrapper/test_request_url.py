"""Request URLs are the base URL joined with the spec's path, each path parameter one escaped segment."""

from __future__ import annotations

import httpx
import pytest
from comet_replicate import Client, NotFoundError


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:8000/replicate/v1",
        "https://api.cometapi.com/replicate/v1",
        "http://localhost:9",
        "https://Example.COM:443/a%20b/v1",
    ],
)
@pytest.mark.parametrize(
    ("prediction_id", "path"), [("abc", "/predictions/abc"), ("a/b c", "/predictions/a%2Fb%20c")]
)
def test_requests_go_to_httpx_parse_of_the_joined_string(base: str, prediction_id: str, path: str) -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(404, json={"detail": "not found"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        client = Client(api_key="k", base_url=base, http_client=http, max_retries=0)
        with client, pytest.raises(NotFoundError):
            client.predictions.get(prediction_id)
    expected = httpx.URL(client.base_url + path)
    (url,) = seen
    assert str(url) == str(expected)
    assert url.raw_path == expected.raw_path
    assert (url.scheme, url.host, url.port) == (expected.scheme, expected.host, expected.port)


def test_requests_reach_the_joined_url() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(404, json={"detail": "not found"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(api_key="k", base_url="http://127.0.0.1:8000/replicate/v1", http_client=http)
    with client, pytest.raises(NotFoundError):
        client.predictions.get("p/1 x")
    http.close()
    assert seen == ["http://127.0.0.1:8000/replicate/v1/predictions/p%2F1%20x"]


def test_a_create_sends_one_json_content_type_and_the_key() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(401, json={"detail": "no"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client(api_key="k", base_url="http://127.0.0.1:8000/replicate/v1", http_client=http)
    with client, pytest.raises(Exception, match="401"):
        client.predictions.create("black-forest-labs/flux-schnell", {"prompt": "a boat"})
    http.close()
    (request,) = sent
    assert request.headers.get_list("content-type") == ["application/json"]
    assert request.headers["authorization"] == "Bearer k"
    assert request.url.path == "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
