"""The async driver reads a download's body straight from its `HeldTransport` (`_fetch_direct`): the
bytes saved are the ones httpx's `Response` would give, Content-Encoding decoded as httpx decodes it
(an unknown coding left as it is), and a transport error names its request as `send` makes it."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import httpx
import pytest
from comet_replicate import APIConnectionError
from comet_replicate._drivers import AsyncDriver
from comet_replicate._files import Downloader, FileOutput
from comet_replicate._http import AsyncApiClient

from tests.reliability._support import RawRequest, RawServer, http_head

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40

ENCODED = {
    "gzip": gzip.compress(IMAGE),
    "deflate": zlib.compress(IMAGE),
    "identity": IMAGE,
    "x-unknown": b"opaque bytes httpx passes on as they are",
}


def _encoded(coding: str) -> object:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        body = ENCODED[coding]
        head = {"Content-Type": "image/png", "Content-Encoding": coding, "Content-Length": str(len(body))}
        writer.write(http_head("200 OK", head) + body)

    return answer


async def _both_paths(url: str) -> tuple[bytes, bytes]:
    """The body read by the direct path, then by the same client through `httpx.AsyncClient.send`."""
    driver = AsyncDriver(None)
    output = FileOutput(url, Downloader(async_driver=driver, max_retries=0))
    try:
        direct = await output.aread()
        client = driver._downloads
        assert isinstance(client, AsyncApiClient) and client.direct is driver._store is not None
        client.direct = None
        return direct, await output.aread()
    finally:
        await driver.aclose()


@pytest.mark.parametrize("coding", sorted(ENCODED))
def test_a_content_encoding_is_decoded_as_httpx_decodes_it(coding: str) -> None:
    with RawServer({"*": _encoded(coding)}) as server:
        direct, sent = asyncio.run(_both_paths(server.base_url + "/out-0.png"))
    assert direct == sent
    assert direct == (ENCODED[coding] if coding == "x-unknown" else IMAGE)


async def _cut_short(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": "1000"}) + b"x" * 10)


def test_a_transport_error_on_the_direct_path_names_its_request() -> None:
    with RawServer({"*": _cut_short}) as server:
        url = server.base_url + "/out-0.png"
        output = FileOutput(url, Downloader(max_retries=0))
        with pytest.raises(APIConnectionError) as caught:
            asyncio.run(output.aread())
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.RemoteProtocolError)
    assert cause.request.url == url and cause.request.method == "GET"
