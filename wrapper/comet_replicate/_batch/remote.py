"""Where a batch reads its input and writes its outputs: a local path, or any URL fsspec reaches.

A location is a URL when it starts with ``scheme://`` (``s3://``, ``gs://``, ``az://``, ``file://``,
``https://`` for inputs, ...); anything else is a local path. fsspec (and the store's own package:
s3fs, gcsfs, adlfs) loads on first use through :func:`fsspec_module`, so ``import comet_replicate``
never imports it. Credentials come from each store's usual environment (``AWS_*`` variables and
files for S3, application-default credentials for GCS, ...): nothing here takes, stores or prints a
secret, and every location shown in a message has any ``user:password@`` part removed.

Each output is written as ONE object, with one PUT (all-or-nothing: a reader never sees half an
image, a killed worker never leaves one); local folders are :class:`~.outputs.OutputFolder`'s job
(a temporary file renamed into place). Names are the output folder's (``line00042-<id>-<name>``),
so a line written twice (a worker that died after writing, and the one that took over) writes the
same name with the same bytes.

Every problem a user can fix before any prediction is paid (unknown scheme, missing package, missing
bucket, wrong credentials, unreadable input) is found by :meth:`RemoteOutputs.check` and
:func:`read_source` and raised as :class:`StorageError`, one line naming the location and the cause.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import BatchInputError

if TYPE_CHECKING:
    from .._files import FileOutput

__all__ = [
    "RemoteOutputs",
    "StorageError",
    "display_location",
    "fsspec_module",
    "is_url",
    "local_path",
    "read_source",
    "source_name",
]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
#: The packages that bring the common object stores to fsspec (named in the "missing package" error).
_STORE_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_COMMON_SCHEMES = ("file", "s3", "gs", "az", "abfs", "https", "http", "memory")
_MAX_INPUT_BYTES = 1 << 30  # an input file larger than 1 GiB is refused rather than read into memory


class StorageError(BatchInputError):
    """An input or output location cannot be used: the message names the location and why.

    ``usage`` is true for problems in what was asked (unknown scheme, missing bucket or file, a
    package to install) and false for a store that did not answer (network, server error).
    """

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def is_url(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://…`` (a Windows drive letter like ``C:\\`` is a path, not a scheme)."""
    return isinstance(location, str) and bool(_URL.match(location))


def display_location(location: str | os.PathLike[str]) -> str:
    """The location as it may be shown: a URL without any ``user:password@`` part."""
    text = os.fspath(location)
    if not is_url(text):
        return text
    parts = urlsplit(text)
    if parts.username is None and parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))


def source_name(location: str | os.PathLike[str]) -> str:
    """The input's file name (``prompts.jsonl``), what the journal keys its lines by."""
    text = os.fspath(location)
    if is_url(text):
        path = urlsplit(text).path.rstrip("/")
        return path.rsplit("/", 1)[-1] or display_location(text)
    return Path(text).name


def fsspec_module() -> ModuleType:
    """fsspec, imported on first use (the ``storage`` extra)."""
    try:
        fsspec: ModuleType = importlib.import_module("fsspec")
    except ImportError:
        raise StorageError(
            "reading or writing URLs needs fsspec: pip install 'comet-replicate[storage]' "
            "(and the store's package: s3fs for s3://, gcsfs for gs://, adlfs for az://)"
        ) from None
    return fsspec


def _filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL; unknown schemes and missing packages named."""
    fsspec = fsspec_module()
    protocol = url.split("://", 1)[0].lower()
    shown = display_location(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        common = [p for p in _COMMON_SCHEMES if p in fsspec.available_protocols()]
        raise StorageError(
            f"{shown}: unknown URL scheme '{protocol}://' (use a local path or one of "
            f"{', '.join(p + '://' for p in common)}, or another fsspec protocol)"
        ) from None
    except ImportError as exc:
        package = _STORE_PACKAGES.get(protocol, getattr(exc, "name", None) or "its fsspec backend")
        raise StorageError(
            f"{shown}: {protocol}:// needs the {package} package (pip install {package})"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ValueError, TypeError, OSError) as exc:
        raise StorageError(f"{shown}: {_reason(exc)}") from None
    return fs, str(path)


def _reason(exc: BaseException) -> str:
    """One line describing a store's exception (never its arguments, which may hold request details)."""
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, PermissionError):
        return "permission denied (check the store's credentials in the environment)"
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def local_path(location: str | os.PathLike[str]) -> Path | None:
    """The local path of a plain path or a ``file://`` URL; None for any other URL."""
    text = os.fspath(location)
    if not is_url(text):
        return Path(text)
    parts = urlsplit(text)
    if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
        return Path(parts.path)
    return None


def read_source(location: str | os.PathLike[str]) -> bytes:
    """The whole content of a batch's input file, local or remote (parsed by ``jsonl.parse_jsonl``)."""
    shown = display_location(location)
    local = local_path(location)
    try:
        if local is not None:
            if local.stat().st_size > _MAX_INPUT_BYTES:
                raise StorageError(f"{shown}: larger than {_MAX_INPUT_BYTES >> 20} MiB")
            data = local.read_bytes()
        else:
            fs, path = _filesystem(os.fspath(location))
            with fs.open(path, "rb") as handle:
                data = handle.read(_MAX_INPUT_BYTES + 1)
            if len(data) > _MAX_INPUT_BYTES:
                raise StorageError(f"{shown}: larger than {_MAX_INPUT_BYTES >> 20} MiB")
    except StorageError:
        raise
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {shown}: {_reason(exc)}", usage=_is_usage(exc)) from None
    except Exception as exc:  # a store's own error type (botocore, aiohttp, ...)
        raise StorageError(f"cannot read {shown}: {_reason(exc)}", usage=False) from None
    return data


def _is_usage(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError | IsADirectoryError)


class RemoteOutputs:
    """A URL prefix on an object store (``s3://bucket/run-7/``) as a batch's output location.

    The same methods and names as :class:`~.outputs.OutputFolder`: each output is named
    ``line<N>-<prediction id>-<name>`` and written as one object with one PUT. A download first lands
    in a private local temporary folder (the same code path, and so the same name and size cap, as a
    local save), then goes up whole; a worker killed mid-way leaves nothing under the prefix.
    """

    def __init__(self, url: str) -> None:
        self.location = url.rstrip("/") + "/"
        self._store: tuple[Any, str] | None = None

    def _resolved(self) -> tuple[Any, str]:
        """(filesystem, root path), resolved on first use so a bad URL is reported by :meth:`check`."""
        if self._store is None:
            fs, path = _filesystem(self.location)
            self._store = fs, path.rstrip("/")
        return self._store

    def check(self) -> None:
        """Fail now, before any prediction, when the scheme is unknown, the bucket is missing, or the
        store refuses us."""
        shown = display_location(self.location)
        fs, root = self._resolved()
        container = root.split("/", 1)[0]
        try:
            exists = fs.exists(container)
        except Exception as exc:  # the store's own error types (botocore, aiohttp, ...)
            raise StorageError(
                f"cannot write outputs to {shown}: {_reason(exc)}", usage=isinstance(exc, PermissionError)
            ) from None
        if not exists:
            raise StorageError(f"cannot write outputs to {shown}: bucket '{container}' does not exist")

    def clear_line(self, line_no: int) -> None:
        """Nothing to clear: an object store never holds half an object."""

    def put(self, name: str, data: bytes) -> str:
        """Write one object whole (one PUT); returns its URL."""
        fs, root = self._resolved()
        try:
            fs.pipe_file(f"{root}/{name}", data)
        except Exception as exc:
            raise StorageError(
                f"cannot write {display_location(self.location + name)}: {_reason(exc)}", usage=False
            ) from None
        return self.location + name

    async def save(self, line_no: int, outputs: Sequence[FileOutput]) -> list[str]:
        """Download every output of a line and put each under the prefix; returns their URLs."""
        urls: list[str] = []
        used: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="comet-batch-") as staging:
            for index, output in enumerate(outputs):
                downloaded = await output.asave(Path(staging) / "")
                name = f"line{line_no:05d}-{downloaded.name}"
                if name in used:  # two outputs of one prediction share a URL name: keep both
                    name = f"line{line_no:05d}-{index}-{downloaded.name}"
                used.add(name)
                data = await asyncio.to_thread(downloaded.read_bytes)
                urls.append(await asyncio.to_thread(self.put, name, data))
                downloaded.unlink()
        return urls

    def finish(self) -> None:
        """Nothing to tidy: no staging area lives in the store."""
