"""Progress across workers, from the journal alone: done / running / failed / unknown / pending.

What ``comet-replicate batch-status --journal …`` prints, during a run and after it, without the
input file and without joining the run. Each line counts once, under the worker that holds it or
last held it (lines no worker has claimed yet are under ``None``):

- ``done``: succeeded;
- ``running``: a live worker holds it (PostgreSQL: its lease has not expired on the database's
  clock; SQLite: a batch holds the journal's lock and the line is being created or waited for);
- ``failed``: failed, canceled, aborted, or refused at create (``not_created``);
- ``unknown``: a create was sent and never answered and nobody holds the line any more;
- ``pending``: waiting for a worker — never started, interrupted, or created by a worker that is
  gone (the next claim resumes it by id).

Reading never writes: a PostgreSQL journal's tables are not created by looking at them, and a
SQLite journal is opened read-only.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import JournalError
from .journal import FINISHED_BAD, LineState
from .postgres import read_status  # psycopg itself loads on first use

__all__ = ["CATEGORIES", "BatchStatus", "StatusCounts", "WorkerStatus", "batch_status", "classify"]

Category = Literal["done", "running", "failed", "unknown", "pending"]
CATEGORIES: tuple[Category, ...] = ("done", "running", "failed", "unknown", "pending")


def classify(state: str, live: bool) -> Category:
    """The category of a line in ``state``; ``live``: a live worker holds it."""
    if state == LineState.SUCCEEDED:
        return "done"
    if state in FINISHED_BAD or state == LineState.NOT_CREATED:
        return "failed"
    if live:
        return "running"
    if state == LineState.CREATING:
        return "unknown"
    return "pending"


@dataclass
class StatusCounts:
    """Lines per category."""

    done: int = 0
    running: int = 0
    failed: int = 0
    unknown: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.done + self.running + self.failed + self.unknown + self.pending

    def add(self, category: Category, count: int) -> None:
        setattr(self, category, getattr(self, category) + count)

    def as_dict(self) -> dict[str, int]:
        return {**{name: getattr(self, name) for name in CATEGORIES}, "total": self.total}


@dataclass
class WorkerStatus:
    """One worker's lines (``worker`` None: lines nobody has claimed yet)."""

    worker: str | None
    counts: StatusCounts = field(default_factory=StatusCounts)
    #: When the worker last wrote one of its lines (ISO 8601, the journal's clock).
    last_seen: str | None = None


@dataclass
class BatchStatus:
    """One batch (an input file's name, or the name given with ``batch=``) in the journal."""

    batch: str
    workers: list[WorkerStatus]
    total: StatusCounts

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "total": self.total.as_dict(),
            "workers": [
                {"worker": w.worker, "last_seen": w.last_seen, **w.counts.as_dict()} for w in self.workers
            ],
        }


def _build(groups: Iterable[tuple[str, str | None, str, bool, int, str | None]]) -> list[BatchStatus]:
    """(batch, worker, state, live, count, last write) groups → one status per batch."""
    batches: dict[str, dict[str | None, WorkerStatus]] = {}
    for batch, worker, state, live, count, seen in groups:
        entry = batches.setdefault(batch, {}).setdefault(worker, WorkerStatus(worker))
        entry.counts.add(classify(state, live), count)
        if seen is not None and (entry.last_seen is None or seen > entry.last_seen):
            entry.last_seen = seen
    result = []
    for name in sorted(batches):
        workers = sorted(batches[name].values(), key=lambda w: (w.worker is None, w.worker or ""))
        total = StatusCounts()
        for each in workers:
            for category in CATEGORIES:
                total.add(category, getattr(each.counts, category))
        result.append(BatchStatus(name, workers, total))
    return result


def batch_status(location: str | os.PathLike[str], *, batch: str | None = None) -> list[BatchStatus]:
    """The status of every batch in the journal at ``location`` (or just ``batch``)."""
    text = os.fspath(location)
    scheme = text.partition("://")[0].split("+", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres"):
        return _build(read_status(text, batch))
    if scheme and len(scheme) > 1:
        raise JournalError(f"unknown journal scheme {scheme!r} (a SQLite file path, or a postgresql:// URL)")
    return _build(_sqlite_groups(Path(text), batch))


def _sqlite_groups(path: Path, batch: str | None) -> list[tuple[str, str | None, str, bool, int, str | None]]:
    if not path.is_file():
        raise JournalError(f"journal {path} does not exist", location=str(path))
    running = _sqlite_in_use(path)
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            columns = {str(row[1]) for row in db.execute("PRAGMA table_info(lines)")}
            if not columns:
                raise JournalError(
                    f"{path} is not a comet-replicate journal (no lines table)", location=str(path)
                )
            worker = "worker" if "worker" in columns else "NULL"
            query = (
                f"SELECT source, {worker}, state, count(*), max(updated_at) FROM lines "
                + ("WHERE source = ? " if batch else "")
                + "GROUP BY 1, 2, 3"
            )
            found = db.execute(query, (batch,) if batch else ()).fetchall()
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"cannot read journal {path}: {exc}", location=str(path)) from None
    return [
        (
            str(source),
            who,
            str(state),
            running and state in (LineState.CREATING, LineState.CREATED),
            int(n),
            seen,
        )
        for source, who, state, n, seen in found
    ]


def _sqlite_in_use(path: Path) -> bool:
    """Whether a batch holds the journal's lock right now (probed without waiting, released at once)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, so no way to tell
        return False
    lock = Path(f"{path}.lock")
    if not lock.exists():
        return False
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False
