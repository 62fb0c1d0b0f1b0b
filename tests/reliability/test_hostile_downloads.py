"""Hostile downloads: output URLs, names and servers that try to escape, flood, stall or confuse.

A raw loopback server (it may lie about Content-Length and trickle bytes) plays the delivery host.
Whatever it does, a saved file stays inside the output folder under a safe name, an oversize body is
refused with a typed error, a slow drip or a stall ends in a typed timeout, and no partial or
temporary file is left behind. The CLI's `run` is checked the same way, with a hostile prediction id.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import httpx
import pytest
import respx
from comet_replicate import APITimeoutError, CometReplicateError, FileOutput
from comet_replicate._files import Downloader

from tests.reliability._support import RawRequest, RawServer, http_head, prediction_body

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
CAP = 64 * 1024


def _downloader(**changes: object) -> Downloader:
    options: dict[str, object] = {"max_bytes": CAP, "timeout": httpx.Timeout(2.0), "max_retries": 0}
    options.update(changes)
    return Downloader(**options)  # type: ignore[arg-type]


def _only_final_files(folder: Path) -> list[str]:
    """Every entry of `folder` (recursively), so stray temp files or escaped paths show up."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


async def _png(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": str(len(PNG))}) + PNG)


def _save_both(output: FileOutput, folder: Path) -> tuple[Path, Path]:
    sync_path = output.save(folder)
    sync_path.rename(folder / "first-copy.bin")
    async_path = asyncio.run(output.asave(folder))
    return sync_path, async_path


HOSTILE_PATHS = [
    "/..%2f..%2fescape.png",
    "/%2e%2e%2f%2e%2e%2fescape.png",
    "/%2e%2e",
    "/..",
    "/%2fetc%2fpasswd",
    "/..%5c..%5cescape.png",
    "/C:%5cWindows%5cescape.png",
    "/.bashrc",
    "/escape%00.png",
    "/" + "a" * 1000 + ".png",
    "/%EF%BD%85%EF%BD%96%EF%BD%89%EF%BD%8C.png",
    "/",
    "/x/..%252f..%252fescape.png",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_output_names_stay_inside_the_output_folder(tmp_path: Path, path: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with RawServer({"*": _png}) as server:
        output = FileOutput(server.base_url + path, _downloader(), prediction_id="../../../id/..%2f")
        saved = _save_both(output, out)
    for final in saved:
        assert final.parent.resolve() == out.resolve(), final
        assert not final.name.startswith("."), final
        assert len(final.name) <= 255
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing escaped next to the folder
    entries = _only_final_files(out)
    assert len(entries) == 2 and all(not e.startswith(".") and "/" not in e for e in entries), entries
    assert (out / "first-copy.bin").read_bytes() == PNG


@pytest.mark.parametrize("prediction_id", ["../../escape", "/etc/passwd", "..", "a/../../b", "\\..\\..\\x"])
def test_hostile_prediction_ids_cannot_steer_the_file_name(tmp_path: Path, prediction_id: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with RawServer({"*": _png}) as server:
        output = FileOutput(f"{server.base_url}/out-0.png", _downloader(), prediction_id=prediction_id)
        final = output.save(out)
    assert final.parent.resolve() == out.resolve()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _assert_nothing_left(folder: Path) -> None:
    assert not folder.exists() or _only_final_files(folder) == [], _only_final_files(folder)


async def _lying_length(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": str(10**12)}) + PNG)


async def _flood_without_length(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png"}))
    for _ in range(CAP // 4096 + 8):
        writer.write(b"x" * 4096)
        await writer.drain()


async def _flood_chunked(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Transfer-Encoding": "chunked"}))
    for _ in range(CAP // 4096 + 8):
        writer.write(b"1000\r\n" + b"x" * 4096 + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")


async def _gzip_bomb(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    bomb = gzip.compress(b"\x00" * (CAP * 64))  # tiny on the wire, 64 times the cap once decoded
    head = {"Content-Type": "image/png", "Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
    writer.write(http_head("200 OK", head) + bomb)


@pytest.mark.parametrize(
    "handler",
    [_lying_length, _flood_without_length, _flood_chunked, _gzip_bomb],
    ids=["huge-content-length", "no-content-length", "chunked", "gzip-bomb"],
)
def test_bodies_over_the_cap_raise_a_typed_error_and_leave_no_file(tmp_path: Path, handler: object) -> None:
    out = tmp_path / "out"
    with RawServer({"*": handler}) as server:  # type: ignore[dict-item]
        output = FileOutput(f"{server.base_url}/out-0.png", _downloader())
        with pytest.raises(CometReplicateError, match="limit"):
            output.save(out)
        with pytest.raises(CometReplicateError, match="limit"):
            asyncio.run(output.asave(out))
        with pytest.raises(CometReplicateError, match="limit"):
            output.read()
    _assert_nothing_left(out)


async def _drip(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    """A byte every 50 ms: each read succeeds inside a read timeout; only a total deadline ends it."""
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": "1000"}))
    for _ in range(1000):
        writer.write(b"x")
        await writer.drain()
        await asyncio.sleep(0.05)


async def _stall(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("200 OK", {"Content-Type": "image/png", "Content-Length": "1000"}) + b"x" * 10)
    await writer.drain()
    await asyncio.sleep(60)


@pytest.mark.parametrize("handler", [_drip, _stall], ids=["slow-drip", "stall"])
def test_slow_or_stalled_downloads_time_out_with_a_typed_error_and_leave_no_file(
    tmp_path: Path, handler: object
) -> None:
    out = tmp_path / "out"
    with RawServer({"*": handler}) as server:  # type: ignore[dict-item]
        output = FileOutput(
            f"{server.base_url}/out-0.png",
            _downloader(timeout=httpx.Timeout(1.0), total_timeout=1.5),
        )
        with pytest.raises(APITimeoutError):
            output.save(out)
        with pytest.raises(APITimeoutError):
            asyncio.run(output.asave(out))
    _assert_nothing_left(out)


def test_downloads_have_a_total_deadline_by_default() -> None:
    """No download can run unbounded: the default downloader carries a finite total deadline."""
    total = Downloader().total_timeout
    assert total is not None and 0 < total <= 600


async def _html(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    page = b"<html><body><script>alert(1)</script></body></html>"
    head = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(page))}
    writer.write(http_head("200 OK", head) + page)


async def _exe(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    head = {"Content-Type": "application/x-msdownload", "Content-Length": str(len(PNG))}
    writer.write(http_head("200 OK", head) + PNG)


@pytest.mark.parametrize(
    ("handler", "path", "suffix"),
    [
        (_html, "/out-0.png", ".png"),  # an HTML page never gets an .html name
        (_exe, "/out-0.webp", ".webp"),  # nor does an executable type change the extension
        (_png, "/payload.html", ".png"),  # an image type wins over the URL's extension
        (_png, "/payload", ".png"),
    ],
)
def test_content_types_never_give_a_dangerous_extension(
    tmp_path: Path, handler: object, path: str, suffix: str
) -> None:
    with RawServer({"*": handler}) as server:  # type: ignore[dict-item]
        final = FileOutput(server.base_url + path, _downloader()).save(tmp_path)
    assert final.parent == tmp_path
    assert final.suffix == suffix


async def _redirect_loop(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("302 Found", {"Location": request.target, "Content-Length": "0"}))


async def _redirect_to_file(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(http_head("302 Found", {"Location": "file:///etc/passwd", "Content-Length": "0"}))


async def _bad_gzip(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    junk = b"this is not gzip"
    head = {"Content-Type": "image/png", "Content-Encoding": "gzip", "Content-Length": str(len(junk))}
    writer.write(http_head("200 OK", head) + junk)


async def _garbage_status(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 OK GARBAGE\r\n\r\n")


@pytest.mark.parametrize(
    "handler",
    [_redirect_loop, _redirect_to_file, _bad_gzip, _garbage_status],
    ids=["redirect-loop", "redirect-to-file-url", "broken-gzip", "garbage-status-line"],
)
def test_protocol_abuse_ends_in_a_typed_error(tmp_path: Path, handler: object) -> None:
    out = tmp_path / "out"
    with RawServer({"*": handler}) as server:  # type: ignore[dict-item]
        output = FileOutput(f"{server.base_url}/out-0.png", _downloader())
        with pytest.raises(CometReplicateError):
            output.save(out)
        with pytest.raises(CometReplicateError):
            asyncio.run(output.aread())
    _assert_nothing_left(out)


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,abc",  # bad padding
        "data:image/png;base64",  # no comma
        "http://[::1/out.png",  # not a URL
        "https://",  # no host
        "http://exa mple.test/out.png",
        "ftp://files.test/out.png",
    ],
)
def test_malformed_output_urls_end_in_a_typed_error(tmp_path: Path, url: str) -> None:
    output = FileOutput(url, _downloader())
    with pytest.raises(CometReplicateError):
        output.save(tmp_path / "out")
    with pytest.raises(CometReplicateError):
        asyncio.run(output.aread())
    _assert_nothing_left(tmp_path / "out")


# --------------------------------------------------------------------------- the CLI


def test_cli_run_keeps_a_hostile_prediction_and_file_name_inside_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comet_replicate._cli import main

    base = "https://api.hostile.test/replicate/v1"
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    monkeypatch.setenv("COMETAPI_KEY", "sk-hostile-0123456789")
    with RawServer({"*": _png}) as server:
        body = prediction_body(id="../../../escaped", output=[f"{server.base_url}/..%2f..%2fescape.png"])
        with respx.mock(assert_all_called=False) as router:
            router.route(host="127.0.0.1").pass_through()
            router.post(f"{base}/models/black-forest-labs/flux-schnell/predictions").respond(201, json=body)
            router.get(url__startswith=f"{base}/predictions/").respond(200, json=body)
            args = ["run", "black-forest-labs/flux-schnell", "--prompt", "x", "--out", str(out)]
            code = main([*args, "--base-url", base, "--json"])
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["out"]
    saved = _only_final_files(out)
    assert len(saved) == 1 and "/" not in saved[0] and not saved[0].startswith("."), saved


def test_data_url_outputs_are_capped_too(tmp_path: Path) -> None:
    import base64

    url = "data:image/png;base64," + base64.b64encode(b"\x00" * (CAP + 1)).decode()
    with pytest.raises(CometReplicateError, match="limit"):
        FileOutput(url, _downloader()).save(tmp_path / "out")
    _assert_nothing_left(tmp_path / "out")
