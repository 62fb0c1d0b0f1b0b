"""Output files: `FileOutput` objects, their names on disk, and the `Downloader` that fetches them.

A download runs the core's download flow (`core.download`) through a driver: the owning client's
when the file came from a client, else one the downloader opens. Downloads never carry the API key
(output URLs point at delivery hosts, not at the API), stream to a temporary file next to the target
and rename it atomically, stop at a size cap and a total deadline, and derive file names safely (no
directories, no traversal, no hidden files).
"""

from __future__ import annotations

import io
import os
import random
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from ._constants import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    DOWNLOAD_MAX_RETRIES,
    DOWNLOAD_TIMEOUT,
    DOWNLOAD_TOTAL_TIMEOUT,
)
from ._drivers import AsyncDriver, SyncDriver
from .core.download import DownloadPolicy, download, short_url
from .core.effects import Flow

__all__ = ["DEFAULT_MAX_DOWNLOAD_BYTES", "FILE_MODE", "Downloader", "FileOutput", "file_outputs", "safe_name"]

#: Mode a saved file is created with before the umask applies (what `open(path, "wb")` uses).
FILE_MODE = 0o666

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
}
_KNOWN_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif"})
_UNSAFE = r"[^A-Za-z0-9._-]+"  # compiled on first use (re's cache): only naming a file needs it


def safe_name(
    url: str,
    content_type: str | None = None,
    *,
    index: int = 0,
    prefix: str | None = None,
    numbered: bool = False,
) -> str:
    """A file name for an output URL: its last path segment reduced to `[A-Za-z0-9._-]`, never empty,
    never hidden, with the extension from the content type when the URL's is missing or differs.

    `prefix` (the prediction id) keeps outputs of different predictions apart: every FLUX
    prediction names its file `out-0.webp` or `output.jpg`. `numbered` adds the output's index, for
    outputs of one prediction whose URLs end in the same name (`…/a/output.png`, `…/b/output.png`).
    """
    if url.startswith("data:"):
        stem, suffix = f"output-{index}", ""
    else:
        last = unquote(urlsplit(url).path).replace("\\", "/").rsplit("/", 1)[-1]
        cleaned = re.sub(_UNSAFE, "_", last).strip("._") or f"output-{index}"
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
    if numbered and not url.startswith("data:"):
        stem = f"{stem[:170]}-{index}"
    if prefix:
        clean_prefix = re.sub(_UNSAFE, "_", prefix).strip("._")[:64]
        stem = f"{clean_prefix}-{stem}" if clean_prefix else stem
    return (stem[:180] or f"output-{index}") + suffix


@dataclass
class Downloader:
    """Fetches output files within its bounds: size cap, per-request timeout, total deadline, retries.

    A client's downloader runs downloads through that client's drivers (`sync_driver` for a
    `Client`, `async_driver` for an `AsyncClient`); otherwise it opens a driver of its own, with
    `sleep`/`async_sleep` and the optional test transports. `aread`/`asave` on a file of a sync
    client use a short-lived async driver, so they work from any event loop.
    """

    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    timeout: httpx.Timeout = field(default_factory=lambda: DOWNLOAD_TIMEOUT)
    total_timeout: float | None = DOWNLOAD_TOTAL_TIMEOUT
    max_retries: int = DOWNLOAD_MAX_RETRIES
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] | None = None
    transport: httpx.BaseTransport | None = None
    async_transport: httpx.AsyncBaseTransport | None = None
    allow_link_local: bool = False
    """Downloads from link-local hosts (cloud metadata services) are refused unless this is set."""
    sync_driver: SyncDriver | None = None
    async_driver: AsyncDriver | None = None
    _own_sync: bool = False

    def _flow(
        self, url: str, sink: IO[bytes], prediction_id: str | None, timeout: float | None
    ) -> Flow[str | None]:
        total = self.total_timeout
        if timeout is not None:
            total = timeout if total is None else min(total, timeout)
        policy = DownloadPolicy(self.max_bytes, self.timeout, total, self.max_retries, self.allow_link_local)
        return download(
            url,
            sink,
            policy,
            clock=self.clock,
            wall_clock=self.wall_clock,
            rng=self.rng,
            prediction_id=prediction_id,
        )

    def fetch(
        self, url: str, sink: IO[bytes], prediction_id: str | None = None, timeout: float | None = None
    ) -> str | None:
        """Stream `url` into `sink` with retries; returns the content type. With the id of the
        prediction it belongs to, a deleted output (403/404/410) is OutputExpired. `timeout` bounds
        this download as a whole (retries included) when shorter than `total_timeout`."""
        if self.sync_driver is None:
            self.sync_driver = SyncDriver(None, sleep=self.sleep, download_transport=self.transport)
            self._own_sync = True
        return self.sync_driver.run(self._flow(url, sink, prediction_id, timeout))

    async def afetch(
        self, url: str, sink: IO[bytes], prediction_id: str | None = None, timeout: float | None = None
    ) -> str | None:
        """The async `fetch` (the same flow, run by an async driver)."""
        if self.async_driver is not None:
            return await self.async_driver.run(self._flow(url, sink, prediction_id, timeout))
        driver = AsyncDriver(None, download_transport=self.async_transport)
        if self.async_sleep is not None:
            driver.sleep = self.async_sleep
        try:
            return await driver.run(self._flow(url, sink, prediction_id, timeout))
        finally:
            await driver.aclose()

    def close(self) -> None:
        """Close the driver this downloader opened itself (a client closes its own)."""
        if self._own_sync and self.sync_driver is not None:
            self.sync_driver.close()
            self.sync_driver = None
            self._own_sync = False


class _Target:
    """Where a save goes: a directory (name derived from the URL) or an explicit file path."""

    def __init__(self, dir_or_path: str | os.PathLike[str]) -> None:
        raw = os.fspath(dir_or_path)
        path = Path(raw).expanduser()
        self.is_dir = path.is_dir() or raw.endswith(("/", os.sep))
        self.directory = path if self.is_dir else path.parent
        self.explicit_name = None if self.is_dir else path.name

    def open_temp(self) -> tuple[IO[bytes], Path]:
        """A new hidden temporary file in the target directory, created with mode 0o666 so that the
        kernel applies the umask (and any default ACL) as for a normal write: `tempfile` would make
        it 0o600, and the rename would keep that private mode for the saved image. The directory is
        made only when the file cannot be opened for its lack (not a mkdir per save)."""
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        )
        made = False
        for _ in range(tempfile.TMP_MAX):
            temp = self.directory / f".comet-{secrets.token_hex(8)}.part"
            try:
                fd = os.open(temp, flags, FILE_MODE)
            except FileExistsError:
                continue
            except FileNotFoundError:
                if made:
                    raise
                self.directory.mkdir(parents=True, exist_ok=True)
                made = True
                continue
            return os.fdopen(fd, "wb"), temp
        raise FileExistsError(f"no free temporary file name in {self.directory}")  # pragma: no cover

    def finish(self, temp: Path, output: FileOutput, content_type: str | None) -> Path:
        name = self.explicit_name or output.file_name(content_type)
        final = self.directory / name
        os.replace(temp, final)
        return final


class FileOutput:
    """One output file of a prediction: `url`, `read()`, `save(dir_or_path)`, `aread()`, `asave(...)`.

    Downloads never carry the API key. `save` writes to a temporary file in the target directory
    and renames it into place, so a failed or interrupted download never leaves a partial file
    under the final name.
    """

    __slots__ = ("_downloader", "_index", "_numbered", "prediction_id", "url")

    def __init__(
        self,
        url: str,
        downloader: Downloader | None = None,
        *,
        index: int = 0,
        prediction_id: str | None = None,
        numbered: bool = False,
    ) -> None:
        self.url = url
        self.prediction_id = prediction_id
        self._downloader = downloader if downloader is not None else Downloader()
        self._index = index
        self._numbered = numbered

    def __repr__(self) -> str:
        return f"FileOutput(url={short_url(self.url)!r})"

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
        return self.file_name(None)

    def file_name(self, content_type: str | None) -> str:
        """The name `save(directory)` gives this output once the content type is known."""
        return safe_name(
            self.url, content_type, index=self._index, prefix=self.prediction_id, numbered=self._numbered
        )

    def read(self, *, timeout: float | None = None) -> bytes:
        """Download the whole file into memory (subject to the size cap); `timeout` bounds the whole
        download in seconds (default: the client's download bound, 300 s)."""
        buffer = io.BytesIO()
        self._downloader.fetch(self.url, buffer, self.prediction_id, timeout)
        return buffer.getvalue()

    async def aread(self, *, timeout: float | None = None) -> bytes:
        """Download the whole file into memory, asynchronously (see `read`)."""
        buffer = io.BytesIO()
        await self._downloader.afetch(self.url, buffer, self.prediction_id, timeout)
        return buffer.getvalue()

    def download(self, sink: IO[bytes], *, timeout: float | None = None) -> str | None:
        """Stream the file into `sink`, an open binary file, from its start (a retry starts over;
        the size cap holds); returns the content type the server gave, if any. For callers that
        manage their own files (`save` writes a temporary file and renames it for you)."""
        return self._downloader.fetch(self.url, sink, self.prediction_id, timeout)

    async def adownload(self, sink: IO[bytes], *, timeout: float | None = None) -> str | None:
        """Asynchronous `download`."""
        return await self._downloader.afetch(self.url, sink, self.prediction_id, timeout)

    def save(self, dir_or_path: str | os.PathLike[str], *, timeout: float | None = None) -> Path:
        """Save into a directory (`<prediction id>-<name from the URL>`, extension from the content type)
        or to an explicit file path.

        Returns the final path. The write is atomic: temp file in the same directory, then rename.
        `timeout` bounds the whole download in seconds (default: the client's download bound).
        """
        target = _Target(dir_or_path)
        handle, temp = target.open_temp()
        try:
            with handle:
                content_type = self._downloader.fetch(self.url, handle, self.prediction_id, timeout)
            return target.finish(temp, self, content_type)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    async def asave(self, dir_or_path: str | os.PathLike[str], *, timeout: float | None = None) -> Path:
        """Asynchronous `save`."""
        target = _Target(dir_or_path)
        handle, temp = target.open_temp()
        try:
            with handle:
                content_type = await self._downloader.afetch(self.url, handle, self.prediction_id, timeout)
            return target.finish(temp, self, content_type)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def file_outputs(urls: list[str], downloader: Downloader, prediction_id: str | None) -> list[FileOutput]:
    """One prediction's outputs, named apart: outputs whose URLs end in the same name (whatever the
    extension turns out to be) get their index in the name, so saving all of them loses none. A single
    output has nothing to be told apart from: its name is not worked out until asked for."""
    if len(urls) == 1:
        return [FileOutput(urls[0], downloader, index=0, prediction_id=prediction_id, numbered=False)]
    stems = [safe_name(url, index=i).rsplit(".", 1)[0].lower() for i, url in enumerate(urls)]
    counts = Counter(stems)  # linear: an answer may list very many outputs
    return [
        FileOutput(url, downloader, index=i, prediction_id=prediction_id, numbered=counts[stems[i]] > 1)
        for i, url in enumerate(urls)
    ]
