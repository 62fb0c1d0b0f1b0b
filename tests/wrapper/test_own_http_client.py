"""A caller's own `http_client` carries every request, output downloads included (its proxies, its
in-process transport), without ever sending the key to a delivery host; with it, plain http to a
`*.test` host (RFC 6761, an in-process transport) is accepted, and nowhere else but loopback."""

from __future__ import annotations

import httpx
import pytest
from comet_replicate import AsyncClient, Client, CometReplicateError

from .conftest import CREATE_PATH, KEY, prediction

BASE = "http://api.example.test/replicate/v1"
FILE = "http://files.example.test/out-0.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"p" * 32


def _server(seen: list[httpx.Request]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "files.example.test":
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        return httpx.Response(201, json=prediction("succeeded", output=[FILE]))

    return httpx.MockTransport(answer)


def test_downloads_go_through_the_callers_http_client_without_credentials() -> None:
    seen: list[httpx.Request] = []
    # A caller may put credentials into its client's default headers: a download must not carry them.
    mine = httpx.Client(transport=_server(seen), headers={"Authorization": f"Bearer {KEY}", "X-Tag": "mine"})
    with Client(api_key=KEY, base_url=BASE, http_client=mine) as client:
        (file,) = client.run("black-forest-labs/flux-schnell", {"prompt": "b"})
        assert file.read() == PNG
    create, download = seen
    assert create.url.path.endswith(CREATE_PATH) and create.headers["authorization"] == f"Bearer {KEY}"
    assert download.url == httpx.URL(FILE)
    assert download.headers["x-tag"] == "mine"
    assert "authorization" not in download.headers
    assert not mine.is_closed  # the caller's client stays the caller's
    mine.close()


async def test_async_downloads_go_through_the_callers_http_client_too() -> None:
    seen: list[httpx.Request] = []
    mine = httpx.AsyncClient(transport=_server(seen))
    async with mine, AsyncClient(api_key=KEY, base_url=BASE, http_client=mine) as client:
        (file,) = await client.run("black-forest-labs/flux-schnell", {"prompt": "b"})
        assert await file.aread() == PNG
    assert [r.url.host for r in seen] == ["api.example.test", "files.example.test"]
    assert "authorization" not in seen[1].headers


def test_plain_http_to_a_test_host_needs_the_callers_own_http_client() -> None:
    with pytest.raises(CometReplicateError, match=r"plain http to api\.example\.test"):
        Client(api_key=KEY, base_url=BASE)
    with httpx.Client() as mine:
        assert Client(api_key=KEY, base_url=BASE, http_client=mine).base_url == BASE
        # Only *.test names: any other plain-http host is refused even with an own client.
        with pytest.raises(CometReplicateError, match=r"plain http to api\.cometapi\.com"):
            Client(api_key=KEY, base_url="http://api.cometapi.com/replicate/v1", http_client=mine)
        with pytest.raises(CometReplicateError, match=r"plain http to test\.example\.com"):
            Client(api_key=KEY, base_url="http://test.example.com/v1", http_client=mine)


def _redirecting(seen: list[httpx.Request], target: str) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example.test":
            return httpx.Response(201, json=prediction("succeeded", output=[FILE]))
        if request.url == httpx.URL(FILE):
            return httpx.Response(302, headers={"location": target})
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    return httpx.MockTransport(answer)


def test_redirects_through_the_callers_client_are_followed_without_credentials() -> None:
    seen: list[httpx.Request] = []
    target = "http://cdn.example.test/real.png"
    mine = httpx.Client(transport=_redirecting(seen, target), headers={"Authorization": f"Bearer {KEY}"})
    with mine, Client(api_key=KEY, base_url=BASE, http_client=mine) as client:
        (file,) = client.run("black-forest-labs/flux-schnell", {"prompt": "b"})
        assert file.read() == PNG
    assert [str(r.url) for r in seen[1:]] == [FILE, target]
    assert all("authorization" not in r.headers for r in seen[1:])


def test_a_redirect_to_a_link_local_host_is_refused_through_the_callers_client_too() -> None:
    seen: list[httpx.Request] = []
    mine = httpx.Client(transport=_redirecting(seen, "http://169.254.169.254/latest/meta-data/"))
    with mine, Client(api_key=KEY, base_url=BASE, http_client=mine) as client:
        (file,) = client.run("black-forest-labs/flux-schnell", {"prompt": "b"})
        with pytest.raises(CometReplicateError, match="link-local"):
            file.read()
    assert [r.url.host for r in seen] == ["api.example.test", "files.example.test"]  # never sent there
