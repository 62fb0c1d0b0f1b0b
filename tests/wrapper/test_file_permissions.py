"""Saved files get the permissions a normal file write would get (0o666 minus the umask), still
written atomically (temporary file in the target directory, then a rename)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from comet_replicate import CometReplicateError, FileOutput
from comet_replicate._files import Downloader

URL = "https://replicate.delivery/xezq/abc/out-0.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 64


def _file() -> tuple[FileOutput, Downloader]:
    def deliver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})

    downloader = Downloader(
        transport=httpx.MockTransport(deliver), async_transport=httpx.MockTransport(deliver)
    )
    return FileOutput(URL, downloader, prediction_id="p1"), downloader


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=lambda m: f"umask-{m:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_gets_0666_minus_the_umask(umask: int, tmp_path: Path) -> None:
    file, downloader = _file()
    try:
        path = file.save(tmp_path)
    finally:
        downloader.close()
    assert path.read_bytes() == PNG
    assert _mode(path) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # the temporary file was renamed


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
async def test_async_save_gets_0666_minus_the_umask_too(umask: int, tmp_path: Path) -> None:
    path = await _file()[0].asave(tmp_path / "explicit.png")
    assert path.read_bytes() == PNG
    assert _mode(path) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["explicit.png"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_failed_save_leaves_no_temporary_file_whatever_the_umask(umask: int, tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="gone")

    downloader = Downloader(transport=httpx.MockTransport(refuse))
    with pytest.raises(CometReplicateError, match="404"):  # OutputExpired for a known prediction
        FileOutput(URL, downloader, prediction_id="p1").save(tmp_path)
    downloader.close()
    assert list(tmp_path.iterdir()) == []
