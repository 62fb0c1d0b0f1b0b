"""The output folder of a batch: each line's files under a stable name, nothing half-written left behind.

Each output lands as ``line<N>-<prediction id>-<name>`` in the folder (sorted like the input, unique
per prediction; two outputs of one prediction with the same name get their index added). A download
goes first to the line's own staging folder ``.comet-batch/line<N>/`` and is renamed into place, so a
``kill -9`` mid-download leaves its temporary file there; processing the line again (the resume)
empties that staging folder first, and it is removed once the line's files are in place. Staging is
per line, so workers sharing one folder (shards, several machines) never touch each other's files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .._files import FileOutput
from .remote import RemoteOutputs, local_path

__all__ = ["STAGING_DIR", "OutputFolder", "Outputs", "output_target"]

#: The hidden folder, inside the output folder, holding downloads in progress.
STAGING_DIR = ".comet-batch"


class OutputFolder:
    """Saves each line's outputs into ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def check(self) -> None:
        """Refuse, before any request, an output location that is not a usable folder."""
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"output folder {self.root} exists and is not a folder")

    def _staging(self, line_no: int) -> Path:
        return self.root / STAGING_DIR / f"line{line_no:05d}"

    def clear_line(self, line_no: int) -> None:
        """Remove what an interrupted download of this line left behind (the line is ours now)."""
        shutil.rmtree(self._staging(line_no), ignore_errors=True)

    async def save(self, line_no: int, outputs: Sequence[FileOutput]) -> list[str]:
        """Download every output of a line into the folder; returns the final paths."""
        staging = self._staging(line_no)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, exist_ok=True)
        paths: list[str] = []
        used: set[str] = set()
        for index, output in enumerate(outputs):
            downloaded = await output.asave(staging)
            name = f"line{line_no:05d}-{downloaded.name}"
            if name in used:  # two outputs of one prediction share a URL name: keep both
                name = f"line{line_no:05d}-{index}-{downloaded.name}"
            used.add(name)
            final = self.root / name
            os.replace(downloaded, final)
            paths.append(str(final))
        shutil.rmtree(staging, ignore_errors=True)
        return paths

    def finish(self) -> None:
        """Remove the staging folder once no line uses it (another worker may still: then it stays)."""
        with contextlib.suppress(OSError):
            (self.root / STAGING_DIR).rmdir()


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
