"""Output files: downloads never carry the key, land atomically under safe names, and stop at a cap."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from comet_replicate import Client, CometReplicateError, FileOutput, OutputExpired
from comet_replicate._files import Downloader, safe_name

from .conftest import CREATE_PATH, prediction

DELIVERY = "https://replicate.delivery/xezq/abc/out-0.webp"
WEBP = b"RIFF\0\0\0\0WEBPVP8 " + b"x" * 100


@pytest.fixture
def delivery() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


def _files(client: Client, api: respx.MockRouter, output: object) -> list[FileOutput]:
    api.post(CREATE_PATH).respond(201, json=prediction("succeeded", output=output))
    return client.run("black-forest-labs/flux-schnell", {"prompt": "b"})


def test_downloads_never_carry_the_api_key(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter
) -> None:
    route = delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    (file,) = _files(client, api, [DELIVERY])
    assert file.read() == WEBP
    request = route.calls.last.request
    assert "authorization" not in request.headers
    assert all("sk-test" not in v for v in request.headers.values())


def test_save_into_a_directory_uses_a_safe_name_and_the_content_type(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path
) -> None:
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    (file,) = _files(client, api, [DELIVERY])
    path = file.save(tmp_path)
    assert path == tmp_path / "p1-out-0.webp"
    assert path.read_bytes() == WEBP
    assert [p.name for p in tmp_path.iterdir()] == ["p1-out-0.webp"]  # no temp file left behind


def test_save_to_an_explicit_path(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path
) -> None:
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    (file,) = _files(client, api, [DELIVERY])
    target = tmp_path / "sub" / "mine.bin"
    assert file.save(target) == target
    assert target.read_bytes() == WEBP


def test_failed_download_leaves_no_partial_file(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path
) -> None:
    delivery.get(DELIVERY).respond(404, text="gone")
    (file,) = _files(client, api, [DELIVERY])
    with pytest.raises(OutputExpired):  # issue 12.7: a deleted output of a prediction, not an HTTP error
        file.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_size_cap(api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path) -> None:
    delivery.get(DELIVERY).respond(200, content=b"x" * 5000, headers={"content-type": "image/webp"})
    c = Client(api_key="sk-test", max_download_bytes=1000)
    api.post(CREATE_PATH).respond(201, json=prediction("succeeded", output=[DELIVERY]))
    (file,) = c.run("black-forest-labs/flux-schnell", {"prompt": "b"})
    with pytest.raises(CometReplicateError, match="limit"):
        file.read()
    with pytest.raises(CometReplicateError, match="limit"):
        file.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_retries_transient_failures(delivery: respx.MockRouter) -> None:
    route = delivery.get(DELIVERY).mock(
        side_effect=[httpx.ConnectError("x"), httpx.Response(503), httpx.Response(200, content=WEBP)]
    )
    slept: list[float] = []
    file = FileOutput(DELIVERY, Downloader(sleep=slept.append))
    assert file.read() == WEBP
    assert route.call_count == 3 and len(slept) == 2


@pytest.mark.parametrize(
    ("url", "content_type", "expected"),
    [
        ("https://h/a/out-0.webp", "image/webp", "out-0.webp"),
        ("https://h/a/out-0", "image/png", "out-0.png"),
        ("https://h/a/out-0.jpeg", "image/jpeg", "out-0.jpeg"),
        ("https://h/a/image.png", "image/jpeg", "image.jpg"),
        ("https://h/..%2F..%2Fetc%2Fpasswd", None, "passwd"),
        ("https://h/a/%2E%2E", None, "output-0"),
        ("https://h/a/..", "image/png", "output-0.png"),
        ("https://h/", None, "output-0"),
        ("https://h/a/.hidden.png", None, "hidden.png"),
        ("https://h/a/C:%5Cwin%5Cx.png", None, "x.png"),
        ("https://h/a/na me;rm -rf.png", None, "na_me_rm_-rf.png"),
        ("data:image/png;base64,AAAA", "image/png", "output-0.png"),
    ],
)
def test_safe_names_never_escape_the_directory(url: str, content_type: str | None, expected: str) -> None:
    name = safe_name(url, content_type)
    assert name == expected
    assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_data_url_outputs_are_decoded_locally(tmp_path: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG-bytes").decode()
    file = FileOutput(url)
    assert file.read() == b"\x89PNG-bytes"
    assert file.save(tmp_path).name == "output-0.png"


def test_other_schemes_are_refused() -> None:
    with pytest.raises(CometReplicateError, match="only http"):
        FileOutput("file:///etc/passwd").read()


async def test_async_read_and_save(delivery: respx.MockRouter, tmp_path: Path) -> None:
    route = delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    file = FileOutput(DELIVERY)
    assert await file.aread() == WEBP
    assert (await file.asave(tmp_path)).read_bytes() == WEBP
    assert all("authorization" not in c.request.headers for c in route.calls)


def test_file_output_reprs_and_equality() -> None:
    assert repr(FileOutput(DELIVERY)) == f"FileOutput(url={DELIVERY!r})"
    assert str(FileOutput(DELIVERY)) == DELIVERY
    assert FileOutput(DELIVERY) == FileOutput(DELIVERY)
    assert FileOutput(DELIVERY).name == "out-0.webp"


def test_outputs_of_different_predictions_do_not_collide(tmp_path: Path, delivery: respx.MockRouter) -> None:
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    a = FileOutput(DELIVERY, prediction_id="aaa")
    b = FileOutput(DELIVERY, prediction_id="../bbb")
    assert {a.save(tmp_path).name, b.save(tmp_path).name} == {"aaa-out-0.webp", "bbb-out-0.webp"}


def test_outputs_of_one_prediction_whose_urls_end_in_the_same_name_are_all_kept(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path
) -> None:
    urls = [
        "https://replicate.delivery/a/output.png",
        "https://replicate.delivery/b/output.png",
        "https://replicate.delivery/c/other",  # extension from the content type: no clash with the others
    ]
    for url in urls:
        delivery.get(url).respond(200, content=url.encode(), headers={"content-type": "image/png"})
    files = _files(client, api, urls)
    saved = [file.save(tmp_path) for file in files]
    assert len({path.name for path in saved}) == 3
    assert {path.read_bytes() for path in saved} == {url.encode() for url in urls}  # nothing overwritten
    assert [file.name for file in files][:2] == ["p1-output-0.png", "p1-output-1.png"]
    assert saved[2].name == "p1-other.png"


async def test_download_streams_into_an_open_file_and_names_the_content_type(
    delivery: respx.MockRouter, tmp_path: Path
) -> None:
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    target = tmp_path / "mine.bin"
    with target.open("wb") as sink:
        assert FileOutput(DELIVERY).download(sink) == "image/webp"
    assert target.read_bytes() == WEBP
    with target.open("wb") as sink:
        assert await FileOutput(DELIVERY).adownload(sink) == "image/webp"
    assert target.read_bytes() == WEBP


def test_download_into_an_open_file_keeps_the_size_cap(delivery: respx.MockRouter, tmp_path: Path) -> None:
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    with (tmp_path / "mine.bin").open("wb") as sink, pytest.raises(CometReplicateError, match="limit"):
        FileOutput(DELIVERY, Downloader(max_bytes=10)).download(sink)


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body whose connection breaks after its first half."""

    def __iter__(self) -> Iterator[bytes]:
        yield WEBP[:50]
        raise httpx.ReadError("connection reset midway")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield WEBP[:50]
        raise httpx.ReadError("connection reset midway")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_retried_download_starts_the_file_over(
    client: Client, api: respx.MockRouter, delivery: respx.MockRouter, tmp_path: Path, mode: str
) -> None:
    """The first try's half body is not left in front of the retry's whole one."""
    headers = {"content-type": "image/webp", "content-length": str(len(WEBP))}
    cut = httpx.Response(200, headers=headers, stream=_CutStream())
    delivery.get(DELIVERY).mock(side_effect=[cut, httpx.Response(200, content=WEBP)])
    (file,) = _files(client, api, [DELIVERY])
    path = file.save(tmp_path) if mode == "sync" else await file.asave(tmp_path)
    assert path.read_bytes() == WEBP


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_download_into_a_callers_file_replaces_what_it_held(
    delivery: respx.MockRouter, mode: str
) -> None:
    """A reused buffer or a file opened for update: the download is its whole content afterwards."""
    delivery.get(DELIVERY).respond(200, content=WEBP, headers={"content-type": "image/webp"})
    sink = io.BytesIO(b"older content, longer than the download " * 10)
    if mode == "sync":
        FileOutput(DELIVERY).download(sink)
    else:
        await FileOutput(DELIVERY).adownload(sink)
    assert sink.getvalue() == WEBP
