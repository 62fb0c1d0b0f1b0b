"""The batch journal: a SQLite file that makes ``batch`` safe to re-run after any crash.

One row per input line, keyed by (input file name, line number, input hash); a line whose input
moved (lines inserted or deleted above it) is found again by its hash. The order of writes is what
makes a paid prediction impossible to lose or to pay twice:

1. ``creating`` is committed *before* the create request is sent;
2. the prediction id is committed in ``on_created``, the moment the answer arrives, before any waiting;
3. the final state (and the saved output paths) is committed when the line ends.

A row left in ``creating`` means the process died between sending the create and reading its answer:
the prediction may exist and nobody knows its id, so a re-run reports the line as unknown and leaves
it alone unless told otherwise (``--retry-unknown``). Every commit is durable on return (WAL with
``synchronous=FULL``), so even ``kill -9`` or a power cut right after it keeps it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._errors import CliUsageError

__all__ = [
    "CREATED",
    "CREATING",
    "FINISHED_BAD",
    "INTERRUPTED",
    "NOT_CREATED",
    "SUCCEEDED",
    "Journal",
    "JournalRow",
    "default_journal_path",
    "input_hash",
]

SCHEMA_VERSION = "1"

#: Line states. ``creating``: create sent (or about to be), id unknown. ``created``: id known, not
#: finished (resumed by id on a re-run). ``not_created``: the server refused the create or it never
#: left this machine, so no prediction exists (created again on a re-run). ``interrupted``: canceled
#: on Ctrl-C (created again on a re-run; the old id is kept in ``previous_ids``).
CREATING, CREATED, SUCCEEDED, NOT_CREATED = "creating", "created", "succeeded", "not_created"
INTERRUPTED = "interrupted"
FINISHED_BAD = ("failed", "canceled", "aborted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    source        TEXT    NOT NULL,  -- the input file's name (moving its folder keeps the journal valid)
    line_no       INTEGER NOT NULL,  -- 1-based physical line number
    input_hash    TEXT    NOT NULL,  -- sha256 of the model and the canonical JSON input
    model         TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    prediction_id TEXT,
    status        TEXT,              -- last server status seen
    error         TEXT,
    outputs       TEXT,              -- JSON list of saved file paths
    creates       INTEGER NOT NULL DEFAULT 0,  -- create requests sent for this line
    previous_ids  TEXT    NOT NULL DEFAULT '[]',  -- ids of earlier predictions (explicit retries)
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (source, line_no, input_hash)
);
"""


def input_hash(model: str, value: dict[str, Any]) -> str:
    """A stable hash of one line's work: the model and its input as canonical JSON."""
    canonical = json.dumps({"model": model, "input": value}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JournalRow:
    """One line's recorded progress."""

    line_no: int
    state: str
    prediction_id: str | None
    status: str | None
    error: str | None
    outputs: list[str]
    creates: int
    previous_ids: list[str]


class Journal:
    """Durable per-line state of one input file's batch; every method commits before returning."""

    def __init__(self, path: Path, source: Path) -> None:
        self.path = path
        self.source = source.name
        self._lock_handle: Any = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise CliUsageError(f"cannot use journal {path}: {exc}") from None
        except OSError as exc:
            self._release_lock()
            raise CliUsageError(f"cannot use journal {path}: {exc.strerror or exc}") from None

    def _acquire_lock(self) -> None:
        """One batch per journal at a time: a second one would create the same lines again."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; rely on the user
            return
        handle = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held for the journal's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CliUsageError(
                f"journal {self.path} is in use by another comet-replicate batch; wait for it to finish"
            ) from None
        self._lock_handle = handle

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def close(self) -> None:
        self._db.close()
        self._release_lock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    def get(self, line_no: int, digest: str) -> JournalRow | None:
        row = self._db.execute(
            "SELECT line_no, state, prediction_id, status, error, outputs, creates, previous_ids "
            "FROM lines WHERE source = ? AND line_no = ? AND input_hash = ?",
            (self.source, line_no, digest),
        ).fetchone()
        if row is None:
            return None
        return JournalRow(
            line_no=row[0],
            state=row[1],
            prediction_id=row[2],
            status=row[3],
            error=row[4],
            outputs=json.loads(row[5]) if row[5] else [],
            creates=row[6],
            previous_ids=json.loads(row[7]),
        )

    def mark_creating(self, line_no: int, digest: str, model: str) -> None:
        """Record that a create is about to be sent; committed (durably) before it is."""
        now = self._now()
        with self._write() as db:
            existing = self.get(line_no, digest)
            previous = list(existing.previous_ids) if existing else []
            if existing and existing.prediction_id:
                previous.append(existing.prediction_id)
            db.execute(
                "INSERT INTO lines (source, line_no, input_hash, model, state, creates, previous_ids, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?) "
                "ON CONFLICT (source, line_no, input_hash) DO UPDATE SET state = excluded.state, "
                "prediction_id = NULL, status = NULL, error = NULL, outputs = NULL, "
                "creates = lines.creates + 1, previous_ids = excluded.previous_ids, "
                "updated_at = excluded.updated_at",
                (self.source, line_no, digest, model, CREATING, json.dumps(previous), now),
            )

    def _update(self, line_no: int, digest: str, **columns: Any) -> None:
        names = sorted(columns)
        assignments = ", ".join(f"{name} = ?" for name in names)
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE lines SET {assignments}, updated_at = ? "  # fixed column names, values bound
                "WHERE source = ? AND line_no = ? AND input_hash = ?",
                (*[columns[n] for n in names], self._now(), self.source, line_no, digest),
            )
            if cursor.rowcount != 1:
                raise RuntimeError(f"journal has no row for line {line_no}")

    def mark_created(self, line_no: int, digest: str, prediction_id: str, status: str | None) -> None:
        """Record the prediction id, the moment the create's answer is read."""
        self._update(line_no, digest, state=CREATED, prediction_id=prediction_id, status=status, error=None)

    def mark_not_created(self, line_no: int, digest: str, error: str) -> None:
        """The create was refused or never left this machine: no prediction exists for the line."""
        self._update(line_no, digest, state=NOT_CREATED, error=error)

    def note(self, line_no: int, digest: str, *, status: str | None = None, error: str | None = None) -> None:
        """Update the last status seen or the last error, keeping the line's state."""
        columns: dict[str, Any] = {"error": error}
        if status is not None:
            columns["status"] = status
        self._update(line_no, digest, **columns)

    def mark_finished(
        self,
        line_no: int,
        digest: str,
        state: str,
        *,
        status: str | None,
        error: str | None = None,
        outputs: Sequence[str] = (),
    ) -> None:
        """Record a line's final state: ``succeeded`` (with its saved files) or one of FINISHED_BAD."""
        self._update(
            line_no, digest, state=state, status=status, error=error, outputs=json.dumps(list(outputs))
        )

    def move(self, old_line_no: int, new_line_no: int, digest: str) -> None:
        """Re-key a row whose input moved to another line (lines inserted or removed above it)."""
        with self._write() as db:
            db.execute(
                "UPDATE lines SET line_no = ?, updated_at = ? "
                "WHERE source = ? AND line_no = ? AND input_hash = ?",
                (new_line_no, self._now(), self.source, old_line_no, digest),
            )

    def keys(self) -> list[tuple[int, str]]:
        """(line number, input hash) of every row of this input file."""
        return [
            (int(row[0]), str(row[1]))
            for row in self._db.execute(
                "SELECT line_no, input_hash FROM lines WHERE source = ? ORDER BY line_no", (self.source,)
            )
        ]

    def rows(self) -> list[JournalRow]:
        """Every row of this input file, by line number (for reports and tests)."""
        keys = self._db.execute(
            "SELECT line_no, input_hash FROM lines WHERE source = ? ORDER BY line_no", (self.source,)
        ).fetchall()
        return [row for key in keys if (row := self.get(key[0], key[1])) is not None]


def default_journal_path(source: Path) -> Path:
    """``FILE.jsonl`` → ``FILE.jsonl.journal.sqlite`` next to it."""
    return source.with_name(source.name + ".journal.sqlite")
