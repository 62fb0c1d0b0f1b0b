"""Request URLs built from the once-parsed base URL are exactly what httpx makes of `base + path`."""

from __future__ import annotations

import httpx
import pytest
from comet_replicate import Client, NotFoundError
from comet_replicate._flow import _target


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
    "path",
    [
        "/predictions/abc",
        "/models/black-forest-labs/flux-schnell/predictions",
        "/predictions/a%2Fb%20c/cancel",
    ],
)
def test_prebuilt_url_equals_httpx_parse_of_the_joined_string(base: str, path: str) -> None:
    with Client(api_key="k", base_url=base) as client:
        s = client._settings
        target = _target(s, s.base_url + path, path)
        expected = httpx.URL(s.base_url + path)
    assert isinstance(target, httpx.URL)
    assert str(target) == str(expected)
    assert target.raw_path == expected.raw_path
    assert (target.scheme, target.host, target.port) == (expected.scheme, expected.host, expected.port)


@pytest.mark.parametrize(
    "path", ["/predictions/é", "/predictions/a b", "/predictions/x?y=1", "predictions/x"]
)
def test_paths_httpx_would_rewrite_fall_back_to_the_plain_string(path: str) -> None:
    with Client(api_key="k", base_url="http://127.0.0.1:8000/replicate/v1") as client:
        s = client._settings
        assert _target(s, s.base_url + path, path) == s.base_url + path


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
