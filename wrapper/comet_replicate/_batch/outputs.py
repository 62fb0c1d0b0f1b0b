"""The output folder of a batch: each line's files under a stable name, nothing half-written left behind.

Each output lands as ``line<N>-<prediction id>-<name>`` in the folder (sorted like the input, unique
per prediction; two outputs of one prediction with the same name get their index added). A download
is streamed into ``.comet-batch/line<N>.<random>.part`` inside the folder and renamed into place, so
a ``kill -9`` mid-download leaves only that temporary file; processing the line again (the resume)
removes the line's temporary files first, and the staging folder goes once it is empty. Temporary
files are named by line, so workers sharing one folder (shards, several machines) never touch each
other's. One staging folder for every line, not one per line: a folder made and removed per line
cost two directory operations per output (a millisecond each on some filesystems).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from .._files import FILE_MODE, FileOutput
from .remote import RemoteOutputs, local_path

__all__ = ["STAGING_DIR", "OutputFolder", "Outputs", "output_target"]

#: The hidden folder, inside the output folder, holding downloads in progress.
STAGING_DIR = ".comet-batch"


class OutputFolder:
    """Saves each line's outputs into ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.staging = self.root / STAGING_DIR
        # The same folders as text, for the per-output work: a pathlib join and its str() cost ~10 µs
        # each, and a batch line paid several per output. Paths come out as pathlib spells them.
        self._root = "" if self.root == Path() else os.fspath(self.root) + os.sep
        self._staging = os.fspath(self.staging) + os.sep

    def check(self) -> None:
        """Refuse, before any request, an output location that is not a usable folder."""
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"output folder {self.root} exists and is not a folder")

    def clear_line(self, line_no: int) -> None:
        """Remove what an interrupted download of this line left behind (the line is ours now):
        its temporary files, and the per-line folder of earlier versions (``line<N>/``)."""
        prefix = _prefix(line_no)
        try:
            entries = list(os.scandir(self.staging))
        except OSError:  # no staging folder: nothing was left
            return
        for entry in entries:
            if entry.name == prefix:
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.name.startswith(prefix + "."):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def _open_temp(self, prefix: str) -> tuple[IO[bytes], str]:
        """A new temporary file of a line (``prefix``) in the staging folder (made again if another
        worker's :meth:`finish` removed it meanwhile), with the mode a normal write gets
        (see ``FILE_MODE``)."""
        for _ in range(_OPEN_TRIES):
            temp = f"{self._staging}{prefix}.{secrets.token_hex(6)}.part"
            try:
                fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
            except FileNotFoundError:
                self.staging.mkdir(parents=True, exist_ok=True)
                continue
            except FileExistsError:
                continue
            return os.fdopen(fd, "wb"), temp
        raise FileExistsError(f"cannot make a temporary file in {self.staging}")

    async def save(self, line_no: int, outputs: Sequence[FileOutput]) -> list[str]:
        """Download every output of a line into the folder; returns the final paths."""
        prefix = _prefix(line_no)
        paths: list[str] = []
        used: set[str] = set()
        for index, output in enumerate(outputs):
            handle, temp = self._open_temp(prefix)
            try:
                with handle:
                    content_type = await output.adownload(handle)
                name = f"{prefix}-{output.file_name(content_type)}"
                if name in used:  # two outputs of one prediction share a URL name: keep both
                    name = f"{prefix}-{index}-{output.file_name(content_type)}"
                used.add(name)
                final = self._root + name
                os.replace(temp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
            paths.append(final)
        return paths

    def finish(self) -> None:
        """Remove the staging folder once no line uses it (another worker may still: then it stays)."""
        with contextlib.suppress(OSError):
            self.staging.rmdir()


def _prefix(line_no: int) -> str:
    return f"line{line_no:05d}"


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_OPEN_TRIES = 8


class Outputs(Protocol):
    """Where a batch puts each line's files: :class:`OutputFolder`, or a URL prefix
    (:class:`~.remote.RemoteOutputs`)."""

    def check(self) -> None: ...

    def clear_line(self, line_no: int) -> None: ...

    async def save(self, line_no: int, outputs: Sequence[FileOutput]) -> list[str]: ...

    def finish(self) -> None: ...


def output_target(location: str | os.PathLike[str]) -> Outputs:
    """A local folder (a path or ``file://``), or a URL prefix of an object store (``s3://…``)."""
    local = local_path(location)
    if local is None:
        return RemoteOutputs(os.fspath(location))
    return OutputFolder(local)
