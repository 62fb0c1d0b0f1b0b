"""Output files: `FileOutput` objects and their downloads.

Downloads use their own HTTP client that never carries the API key (output URLs point at delivery
hosts, not at the API), stream to a temporary file next to the target and rename it atomically, stop
at a size cap, and derive file names safely (no directories, no traversal, no hidden files).
"""

from __future__ import annotations

import base64
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx

from ._errors import APIConnectionError, APITimeoutError, CometReplicateError, status_error
from ._policy import Failure, OpKind, parse_retry_after, retry_delay

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "Downloader", "FileOutput", "safe_name"]

DEFAULT_MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DOWNLOAD_TOTAL_TIMEOUT = 300.0
"""A whole download (retries included) ends by then: a server dripping a byte at a time never trips a
per-read timeout, so only a total deadline bounds it."""
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
}
_KNOWN_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

if TYPE_CHECKING:
    from collections.abc import Callable


def safe_name(url: str, content_type: str | None = None, *, index: int = 0, prefix: str | None = None) -> str:
    """A file name for an output URL: its last path segment reduced to `[A-Za-z0-9._-]`, never empty,
    never hidden, with the extension from the content type when the URL's is missing or differs.

    `prefix` (the prediction id) keeps outputs of different predictions apart: every FLUX
    prediction names its file `out-0.webp` or `output.jpg`.
    """
    if url.startswith("data:"):
        stem, suffix = f"output-{index}", ""
    else:
        last = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
        cleaned = _UNSAFE.sub("_", last).strip("._") or f"output-{index}"
        stem, dot, ext = cleaned.rpartition(".")
        if dot and stem:
            suffix = "." + ext.lower()
        else:
            stem, suffix = cleaned, ""
    wanted = _EXTENSIONS.get((content_type or "").split(";")[0].strip().lower())
    if wanted and not (suffix == wanted or (wanted == ".jpg" and suffix == ".jpeg")):
        suffix = wanted
    elif suffix and suffix not in _KNOWN_SUFFIXES and not wanted:
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
    if prefix:
        clean_prefix = _UNSAFE.sub("_", prefix).strip("._")[:64]
        stem = f"{clean_prefix}-{stem}" if clean_prefix else stem
    return (stem[:180] or f"output-{index}") + suffix


def _too_big(url: str, limit: int) -> CometReplicateError:
    return CometReplicateError(
        f"download of {_short_url(url)} exceeds the {limit:,}-byte limit (max_download_bytes)"
    )


def _short_url(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


def _decode_data_url(url: str, limit: int) -> tuple[bytes, str | None]:
    header, sep, payload = url.partition(",")
    if not sep:
        raise CometReplicateError("malformed data URL in output")
    mime = header[5:].split(";")[0] or None
    try:
        data = base64.b64decode(payload, validate=False) if ";base64" in header else unquote(payload).encode()
    except ValueError as exc:  # binascii.Error: bad padding
        raise CometReplicateError(f"malformed data URL in output: {exc}") from None
    if len(data) > limit:
        raise _too_big("data URL", limit)
    return data, mime


@dataclass
class Downloader:
    """Fetches output files. Holds no credentials; owns its HTTP clients and closes them with the client."""

    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    timeout: httpx.Timeout = field(default_factory=lambda: DOWNLOAD_TIMEOUT)
    total_timeout: float | None = DOWNLOAD_TOTAL_TIMEOUT
    clock: Callable[[], float] = time.monotonic
    max_retries: int = 2
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Any] = field(default_factory=lambda: _asyncio_sleep)
    transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    async_owned: bool = False
    _client: httpx.Client | None = None
    _async_client: httpx.AsyncClient | None = None

    def client(self) -> httpx.Client:
        """The sync download client (created on first use; no auth headers, redirects followed)."""
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout,
                follow_redirects=True,
                transport=self.transport,
                headers=_ua(),
                verify=_ssl(),
            )
        return self._client

    def async_client(self) -> httpx.AsyncClient:
        """The async download client (created on first use, in the caller's event loop)."""
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=True,
                transport=self.async_transport,
                headers=_ua(),
                verify=_ssl(),
            )
        return self._async_client

    def close(self) -> None:
        """Close the sync client (the async one is closed by `aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close both clients."""
        self.close()
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    def _check(self, url: str) -> None:
        if not url.startswith(("https://", "http://")):
            raise CometReplicateError(f"refusing to download {_short_url(url)!r}: only http(s) and data URLs")
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL as exc:
            raise CometReplicateError(f"refusing to download {_short_url(url)!r}: {exc}") from None
        if not host:
            raise CometReplicateError(f"refusing to download {_short_url(url)!r}: no host")

    def _on_time(self, url: str, started: float) -> None:
        """Raise APITimeoutError once the whole download has taken longer than `total_timeout`."""
        if self.total_timeout is not None and self.clock() - started > self.total_timeout:
            raise APITimeoutError(
                f"download of {_short_url(url)} took longer than {self.total_timeout:g} s",
                method="GET",
                url=_short_url(url),
            )

    def _failed(self, url: str, exc: httpx.RequestError, retry_index: int) -> float:
        """The delay before retrying a failed download, or the typed error to raise."""
        # Redirect loops and undecodable bodies are not transient: retrying cannot help.
        delay = self._decide(exc, None, retry_index) if isinstance(exc, httpx.TransportError) else None
        if delay is None:
            cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
            raise cls(
                f"download of {_short_url(url)} failed: {type(exc).__name__}",
                method="GET",
                url=_short_url(url),
            ) from exc
        return delay

    def _decide(
        self, exc: BaseException | None, response: httpx.Response | None, retry_index: int
    ) -> float | None:
        if response is not None:
            return retry_delay(
                OpKind.GET,
                Failure.STATUS,
                retry_index=retry_index,
                max_retries=self.max_retries,
                rng=self.rng,
                status=response.status_code,
                retry_after=parse_retry_after(response.headers, now_epoch=time.time()),
            )
        failure = (
            Failure.NOT_SENT
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            else Failure.NETWORK
        )
        return retry_delay(
            OpKind.GET, failure, retry_index=retry_index, max_retries=self.max_retries, rng=self.rng
        )

    def _status_error(self, url: str, response: httpx.Response) -> CometReplicateError:
        error = status_error(
            response.status_code, method="GET", url=_short_url(url), headers=response.headers, content=b""
        )
        error.message = f"download failed with HTTP {response.status_code}"
        return error

    def _begin(self, response: httpx.Response, url: str, sink: IO[bytes]) -> int:
        """Check the announced size and empty the sink (a retry starts over); returns bytes written."""
        _check_length(response, url, self.max_bytes)
        sink.seek(0)
        sink.truncate()
        return 0

    def _take(self, chunk: bytes, written: int, url: str, started: float, sink: IO[bytes]) -> int:
        """Write one chunk within the deadline and the size cap; returns bytes written so far."""
        self._on_time(url, started)
        written += len(chunk)
        if written > self.max_bytes:
            raise _too_big(url, self.max_bytes)
        sink.write(chunk)
        return written

    def fetch(self, url: str, sink: IO[bytes]) -> str | None:
        """Stream `url` into `sink` with retries; returns the content type."""
        if url.startswith("data:"):
            data, mime = _decode_data_url(url, self.max_bytes)
            sink.write(data)
            return mime
        self._check(url)
        retry_index = 0
        started = self.clock()
        while True:
            self._on_time(url, started)
            try:
                with self.client().stream("GET", url) as response:
                    if response.is_success:
                        written = self._begin(response, url, sink)
                        for chunk in response.iter_bytes():
                            written = self._take(chunk, written, url, started, sink)
                        content_type: str | None = response.headers.get("content-type")
                        return content_type
                    delay = self._decide(None, response, retry_index)
                    if delay is None:
                        raise self._status_error(url, response)
            except httpx.RequestError as exc:
                delay = self._failed(url, exc, retry_index)
            retry_index += 1
            self.sleep(delay)

    async def afetch(self, url: str, sink: IO[bytes]) -> str | None:
        """The async twin of `fetch` (same decisions; only the I/O and the sleep differ).

        A downloader owned by a sync `Client` opens a short-lived async client per call, so a
        FileOutput can be awaited from any event loop without reusing a closed loop's connections.
        """
        if url.startswith("data:"):
            data, mime = _decode_data_url(url, self.max_bytes)
            sink.write(data)
            return mime
        self._check(url)
        if self.async_owned:
            return await self._afetch(self.async_client(), url, sink)
        async with httpx.AsyncClient(
            timeout=self.timeout,
            follow_redirects=True,
            transport=self.async_transport,
            headers=_ua(),
            verify=_ssl(),
        ) as client:
            return await self._afetch(client, url, sink)

    async def _afetch(self, client: httpx.AsyncClient, url: str, sink: IO[bytes]) -> str | None:
        retry_index = 0
        started = self.clock()
        while True:
            self._on_time(url, started)
            try:
                async with client.stream("GET", url) as response:
                    if response.is_success:
                        written = self._begin(response, url, sink)
                        async for chunk in response.aiter_bytes():
                            written = self._take(chunk, written, url, started, sink)
                        content_type: str | None = response.headers.get("content-type")
                        return content_type
                    delay = self._decide(None, response, retry_index)
                    if delay is None:
                        raise self._status_error(url, response)
            except httpx.RequestError as exc:
                delay = self._failed(url, exc, retry_index)
            retry_index += 1
            await self.async_sleep(delay)


async def _asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def _ssl() -> Any:
    from ._client import shared_ssl_context

    return shared_ssl_context()


def _ua() -> dict[str, str]:
    from ._version import __version__

    return {"User-Agent": f"comet-replicate/{__version__}"}


def _check_length(response: httpx.Response, url: str, limit: int) -> None:
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise _too_big(url, limit)


class _Target:
    """Where a save goes: a directory (name derived from the URL) or an explicit file path."""

    def __init__(self, dir_or_path: str | os.PathLike[str]) -> None:
        raw = os.fspath(dir_or_path)
        path = Path(raw).expanduser()
        self.is_dir = path.is_dir() or raw.endswith(("/", os.sep))
        self.directory = path if self.is_dir else path.parent
        self.explicit_name = None if self.is_dir else path.name

    def open_temp(self) -> tuple[IO[bytes], Path]:
        import tempfile

        self.directory.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the caller, then renamed
            dir=self.directory, prefix=".comet-", suffix=".part", delete=False
        )
        return handle, Path(handle.name)

    def finish(self, temp: Path, url: str, content_type: str | None, index: int, prefix: str | None) -> Path:
        name = self.explicit_name or safe_name(url, content_type, index=index, prefix=prefix)
        final = self.directory / name
        os.replace(temp, final)
        return final


class FileOutput:
    """One output file of a prediction: `url`, `read()`, `save(dir_or_path)`, `aread()`, `asave(...)`.

    Downloads never carry the API key. `save` writes to a temporary file in the target directory
    and renames it into place, so a failed or interrupted download never leaves a partial file
    under the final name.
    """

    __slots__ = ("_downloader", "_index", "prediction_id", "url")

    def __init__(
        self,
        url: str,
        downloader: Downloader | None = None,
        *,
        index: int = 0,
        prediction_id: str | None = None,
    ) -> None:
        self.url = url
        self.prediction_id = prediction_id
        self._downloader = downloader if downloader is not None else Downloader()
        self._index = index

    def __repr__(self) -> str:
        return f"FileOutput(url={_short_url(self.url)!r})"

    def __str__(self) -> str:
        return self.url

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileOutput) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    @property
    def name(self) -> str:
        """The safe file name `save(directory)` would use (`<prediction id>-<URL name>`; the content type
        may still change the extension)."""
        return safe_name(self.url, index=self._index, prefix=self.prediction_id)

    def read(self) -> bytes:
        """Download the whole file into memory (subject to the size cap)."""
        import io

        buffer = io.BytesIO()
        self._downloader.fetch(self.url, buffer)
        return buffer.getvalue()

    async def aread(self) -> bytes:
        """Download the whole file into memory, asynchronously."""
        import io

        buffer = io.BytesIO()
        await self._downloader.afetch(self.url, buffer)
        return buffer.getvalue()

    def save(self, dir_or_path: str | os.PathLike[str]) -> Path:
        """Save into a directory (`<prediction id>-<name from the URL>`, extension from the content type)
        or to an explicit file path.

        Returns the final path. The write is atomic: temp file in the same directory, then rename.
        """
        target = _Target(dir_or_path)
        handle, temp = target.open_temp()
        try:
            with handle:
                content_type = self._downloader.fetch(self.url, handle)
            return target.finish(temp, self.url, content_type, self._index, self.prediction_id)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def asave(self, dir_or_path: str | os.PathLike[str]) -> Path:
        """Asynchronous `save`."""
        target = _Target(dir_or_path)
        handle, temp = target.open_temp()
        try:
            with handle:
                content_type = await self._downloader.afetch(self.url, handle)
            return target.finish(temp, self.url, content_type, self._index, self.prediction_id)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
