"""The SQLite journal: one file on one machine, one batch at a time (the default store).

One row per input line, keyed by (input file name, line number, input digest). Every commit
survives ``kill -9`` on return (WAL: it is in the log, in the OS's cache). Those a re-run depends
on — a ``creating`` marker, an id, every other write that changes what a re-run would do — are also
durable on return: they commit with ``synchronous=FULL``, one fsync of the log each, so a power cut
or an OS crash right after keeps them too. A write that only records how a prediction ended (its
final state, its saved files, a note) commits with ``synchronous=NORMAL``, without an fsync of its
own: the next FULL commit's fsync makes it durable with it (the log is written in order), and so
does closing the journal (its checkpoint). A power cut before either undoes it, and the line reads
``created`` with its id again: the next run waits for that prediction by id and saves its outputs
again (saved files are not fsynced either), and nothing is paid twice. That spares one fsync a line.

A lock file next to the journal admits one batch at a time: a second one would create the same lines
again. Claims therefore never expire and need no renewal.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .._constants import JOURNAL_WAL_CHECKPOINT_PAGES
from .errors import JournalError
from .items import BatchItem, Shard
from .journal import REREAD_BY_ID, Claim, Journal, JournalRow, LineState, RetryPolicy
from .plan import decide

__all__ = ["SCHEMA_VERSION", "SQLiteJournal", "default_journal_path"]

#: Version 1: lines and meta. Version 2 adds ``lines.worker``, ``lines.sent_at`` and the ``shard``
#: meta key.
SCHEMA_VERSION = 2

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
    worker        TEXT,              -- the process that last wrote the line
    sent_at       TEXT,              -- when the last create was about to be sent (ISO 8601, UTC)
    PRIMARY KEY (source, line_no, input_hash)
);
"""
_COLUMNS = ", ".join(
    (
        "line_no",
        "state",
        "prediction_id",
        "status",
        "error",
        "outputs",
        "creates",
        "previous_ids",
        "input_hash",
        "worker",
        "sent_at",
    )
)


def _update_sql(*names: str) -> str:
    """The UPDATE of one line's ``names`` (and its ``worker`` and ``updated_at``): one fixed text per
    kind of write, so sqlite3's statement cache compiles each once."""
    assignments = ", ".join(f"{name} = ?" for name in (*names, "worker", "updated_at"))
    return f"UPDATE lines SET {assignments} WHERE source = ? AND line_no = ? AND input_hash = ?"


_CREATED = _update_sql("state", "prediction_id", "status", "error")
_NOT_CREATED = _update_sql("state", "error")
_NOTE = _update_sql("error")
_NOTE_STATUS = _update_sql("error", "status")
_FINISHED = _update_sql("state", "status", "error", "outputs")
_CREATING = (
    "INSERT INTO lines (source, line_no, input_hash, model, state, creates, previous_ids, "
    "updated_at, worker, sent_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?) "
    "ON CONFLICT (source, line_no, input_hash) DO UPDATE SET state = excluded.state, "
    "prediction_id = NULL, status = NULL, error = NULL, outputs = NULL, "
    "creates = lines.creates + 1, previous_ids = {moved}, "
    "updated_at = excluded.updated_at, worker = excluded.worker, sent_at = excluded.sent_at"
)
#: The old id moves to previous_ids in the same statement: no read first (SQLite with JSON functions).
_CREATING_JSON1 = _CREATING.format(
    moved="CASE WHEN lines.prediction_id IS NULL THEN lines.previous_ids "
    "ELSE json_insert(lines.previous_ids, '$[#]', lines.prediction_id) END"
)
#: Without them, previous_ids is read first and written whole.
_CREATING_READ_FIRST = _CREATING.format(moved="excluded.previous_ids")
#: A commit made under FULL is fsynced before it returns; under NORMAL it waits for the next FULL one
#: (or the checkpoint at close). SQLite takes the setting only outside a transaction.
_SYNC_FULL = "PRAGMA synchronous=FULL"
_SYNC_NORMAL = "PRAGMA synchronous=NORMAL"


def default_journal_path(source: Path, shard: Shard | None = None) -> Path:
    """``FILE.jsonl`` → ``FILE.jsonl.journal.sqlite`` next to it (``….shard-2-of-4.journal.sqlite``)."""
    part = f".shard-{shard.index}-of-{shard.count}" if shard else ""
    return source.with_name(f"{source.name}{part}.journal.sqlite")


def default_worker_id() -> str:
    """``host:pid``: which process wrote a line."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _row(values: Sequence[Any]) -> JournalRow:
    return JournalRow(
        line_no=int(values[0]),
        state=str(values[1]),
        prediction_id=values[2],
        status=values[3],
        error=values[4],
        outputs=json.loads(values[5]) if values[5] else [],
        creates=int(values[6]),
        previous_ids=json.loads(values[7]),
        digest=str(values[8]),
        worker=values[9],
        sent_at=datetime.fromisoformat(values[10]).timestamp() if values[10] else None,
    )


def _has_json1(db: sqlite3.Connection) -> bool:
    """Whether this SQLite has the JSON functions (built in since 3.38; most older builds too)."""
    try:
        found = db.execute("SELECT json_insert('[]', '$[#]', 'x')").fetchone()
    except sqlite3.Error:
        return False
    return bool(found) and found[0] == '["x"]'


class SQLiteJournal(Journal):
    """Durable per-line state of one input file's batch in a SQLite file.

    ``source`` names the batch (the input file; only its name is stored, so moving the folder keeps
    the journal valid). ``shard`` is recorded on first use; a journal made for another shard (or for
    none) is refused, since its lines would be counted twice across shards.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        source: str | os.PathLike[str],
        *,
        shard: Shard | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.source = Path(source).name
        self.worker_id = worker_id or default_worker_id()
        self._lock_handle: IO[str] | None = None
        self._items: list[BatchItem] = []
        self._cursor = 0
        self._held: set[tuple[int, str]] = set()
        self._grouped = False
        self._json1 = False
        self._full = True  # the synchronous setting in effect: FULL (True) or NORMAL
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
            # check_same_thread off: Batch prepares in the caller's thread, then only its loop thread writes.
            db = self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SYNC_FULL)
            self._db.execute(f"PRAGMA wal_autocheckpoint={JOURNAL_WAL_CHECKPOINT_PAGES:d}")
            self._migrate()
            self._check_shard(shard)
            self._json1 = _has_json1(self._db)
        except sqlite3.DatabaseError as exc:
            self._abandon(db)
            raise JournalError(f"cannot use journal {self.path}: {exc}", location=self.location) from None
        except OSError as exc:
            self._abandon(db)
            raise JournalError(
                f"cannot use journal {self.path}: {exc.strerror or exc}", location=self.location
            ) from None
        except JournalError:
            self._abandon(db)
            raise

    # -- opening ----------------------------------------------------------------------------------

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
            raise JournalError(
                f"journal {self.path} is in use by another comet-replicate batch; wait for it to finish",
                location=self.location,
            ) from None
        self._lock_handle = handle

    def _abandon(self, db: sqlite3.Connection | None) -> None:
        """A journal that could not be opened leaves no connection and no lock behind."""
        if db is not None:
            db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _migrate(self) -> None:
        """Create the schema, or bring a journal of an older version up to this one."""
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            found = self._meta("schema_version")
            version = int(found) if found and found.isdigit() else None
            if version is not None and version > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.path} has schema version {version}, newer than this "
                    f"comet-replicate understands ({SCHEMA_VERSION}); upgrade comet-replicate",
                    location=self.location,
                )
            if version == 1:
                db.execute("ALTER TABLE lines ADD COLUMN worker TEXT")
                db.execute("ALTER TABLE lines ADD COLUMN sent_at TEXT")
                # The best a version 1 row knows of when its create was sent: its last write.
                db.execute("UPDATE lines SET sent_at = updated_at WHERE state = 'creating'")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT INTO meta VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    def _check_shard(self, shard: Shard | None) -> None:
        wanted = str(shard) if shard else ""
        with self._write() as db:
            recorded = self._meta("shard")
            if recorded is None:
                has_rows = db.execute("SELECT 1 FROM lines LIMIT 1").fetchone() is not None
                recorded = "" if has_rows else wanted  # rows before shards existed: an unsharded run
                db.execute("INSERT INTO meta VALUES ('shard', ?)", (recorded,))
        if recorded != wanted:
            made = f"shard {recorded}" if recorded else "an unsharded batch"
            asked = f"shard {wanted}" if wanted else "an unsharded batch"
            raise JournalError(
                f"journal {self.path} belongs to {made}, not {asked}: mixing them could create lines "
                "twice; use the journal of that shard (or another --journal)",
                location=self.location,
            )

    def close(self) -> None:
        self._held.clear()
        db: sqlite3.Connection | None = getattr(self, "_db", None)
        if db is not None:
            db.close()
        self._release_lock()

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction, one durable commit, for every write made inside (see :meth:`Journal.group`).
        A write that raises leaves nothing and the others stay: a one-statement write is atomic by
        itself (:meth:`_statement`), a longer one is a savepoint of the group."""
        if self._grouped:
            yield
            return
        with self._write():
            self._grouped = True
            try:
                yield
            finally:
                self._grouped = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write of several statements: its own transaction, or a savepoint of the group's."""
        if self._grouped:
            self._check_group()
            with self._savepoint():
                yield self._db
            return
        self._sync(full=True)  # a group may hold a write that must be durable on return
        self._execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._execute("COMMIT")
        except JournalError:
            if self._db.in_transaction:  # nothing of it is kept, and the next write can begin
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._execute("SAVEPOINT line_write")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO line_write")
            self._db.execute("RELEASE line_write")
            raise
        self._execute("RELEASE line_write")

    def _sync(self, *, full: bool) -> None:
        """Make the next commit FULL (fsynced before it returns) or NORMAL (durable with the next FULL
        one); a statement only when the setting changes. Outside a transaction only."""
        if full != self._full:
            self._execute(_SYNC_FULL if full else _SYNC_NORMAL)
            self._full = full

    def _execute(self, statement: str) -> None:
        try:
            self._db.execute(statement)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc}", location=self.location) from None

    def _check_group(self) -> None:
        """Inside a group, its transaction must still be open: after some errors (disk full, I/O)
        SQLite rolls the whole transaction back, and a write made then would commit alone while the
        group's earlier writes are gone; the group's commit then fails for all of them."""
        if not self._db.in_transaction:
            raise JournalError(
                f"cannot write journal {self.path}: its transaction was rolled back", location=self.location
            )

    def _statement(self, statement: str, values: tuple[object, ...], *, full: bool = True) -> int:
        """A write that is one statement, and the rows it changed. SQLite makes each statement atomic
        by itself (one that fails changes nothing), so it needs no savepoint inside a group, and alone
        it commits on its own (autocommit; with ``full``, durable on return, else with the next FULL
        commit — see the module docstring; a group always commits FULL): one statement executed where
        BEGIN + write + COMMIT, or SAVEPOINT + write + RELEASE, would be three."""
        if self._grouped:
            self._check_group()
        else:
            self._sync(full=full)
        try:
            return self._db.execute(statement, values).rowcount
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc}", location=self.location) from None

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    def get(self, line_no: int, digest: str) -> JournalRow | None:
        """The row of one line, or None."""
        found = self._db.execute(
            f"SELECT {_COLUMNS} FROM lines WHERE source = ? AND line_no = ? AND input_hash = ?",
            (self.source, line_no, digest),
        ).fetchone()
        return None if found is None else _row(found)

    def rows(self) -> list[JournalRow]:
        found = self._db.execute(
            f"SELECT {_COLUMNS} FROM lines WHERE source = ? ORDER BY line_no, input_hash", (self.source,)
        ).fetchall()
        return [_row(values) for values in found]

    def prepare(self, items: Sequence[BatchItem]) -> None:
        """Re-key rows whose input moved (found by digest), then queue ``items`` for claims."""
        keys = {(row.line_no, row.digest) for row in self.rows()}
        wanted = {(item.line, item.digest) for item in items}
        unclaimed: dict[str, list[int]] = {}
        for line_no, digest in sorted(keys - wanted):
            unclaimed.setdefault(digest, []).append(line_no)
        with self._write() as db:
            for item in items:
                if (item.line, item.digest) not in keys and unclaimed.get(item.digest):
                    db.execute(
                        "UPDATE lines SET line_no = ?, updated_at = ? "
                        "WHERE source = ? AND line_no = ? AND input_hash = ?",
                        (item.line, self._now(), self.source, unclaimed[item.digest].pop(0), item.digest),
                    )
        self._items = sorted(items, key=lambda item: item.line)
        self._cursor = 0
        self._held.clear()

    def claim(self, limit: int, policy: RetryPolicy) -> list[Claim]:
        """The next ``limit`` prepared lines that need work, in line order (each at most once per run)."""
        claims: list[Claim] = []
        while len(claims) < limit and self._cursor < len(self._items):
            item = self._items[self._cursor]
            self._cursor += 1
            row = self.get(item.line, item.digest)
            action = decide(row, policy)
            if action == "create" or (action == "resume" and row is not None):
                prediction_id = row.prediction_id if row is not None and action == "resume" else None
                claims.append(Claim(item.line, item.digest, action, prediction_id))
                self._held.add((item.line, item.digest))
        return claims

    def renew(self, lines: Sequence[tuple[int, str]]) -> None:
        """Nothing to renew: the file lock makes every claim exclusive for the journal's lifetime."""

    def release(self, lines: Sequence[tuple[int, str]]) -> None:
        self._held.difference_update(lines)

    def mark_creating(self, line_no: int, digest: str, model: str) -> None:
        now = self._now()
        values = (self.source, line_no, digest, model, LineState.CREATING.value)
        if self._json1:
            self._statement(_CREATING_JSON1, (*values, "[]", now, self.worker_id, now))
            return
        with self._write() as db:  # read, then write, in one transaction
            existing = self.get(line_no, digest)
            ids = list(existing.previous_ids) if existing else []
            if existing and existing.prediction_id:
                ids.append(existing.prediction_id)
            db.execute(_CREATING_READ_FIRST, (*values, json.dumps(ids), now, self.worker_id, now))

    def _update(self, statement: str, line_no: int, digest: str, *values: object, full: bool = True) -> None:
        """One of the fixed UPDATEs of one line; a line without a row is an error (nothing changed)."""
        changed = self._statement(
            statement, (*values, self.worker_id, self._now(), self.source, line_no, digest), full=full
        )
        if changed != 1:
            raise JournalError(f"journal has no row for line {line_no}", location=self.location)

    def mark_created(self, line_no: int, digest: str, prediction_id: str, status: str | None) -> None:
        self._update(_CREATED, line_no, digest, LineState.CREATED.value, prediction_id, status, None)

    def mark_not_created(self, line_no: int, digest: str, error: str) -> None:
        self._update(_NOT_CREATED, line_no, digest, LineState.NOT_CREATED.value, error)
        self._held.discard((line_no, digest))

    def note(self, line_no: int, digest: str, *, status: str | None = None, error: str | None = None) -> None:
        """A note keeps the line's state, so a re-run does the same with or without it: no fsync."""
        if status is None:
            self._update(_NOTE, line_no, digest, error, full=False)
        else:
            self._update(_NOTE_STATUS, line_no, digest, error, status, full=False)

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
        """How a prediction ended, without an fsync: lost to a power cut, the line reads ``created``
        and the next run finds the same end by its id. ``interrupted`` (the user's stop, which a
        re-run turns into a new create) is fsynced."""
        state = str(state)
        self._update(
            _FINISHED,
            line_no,
            digest,
            state,
            status,
            error,
            json.dumps(list(outputs)),
            full=state not in REREAD_BY_ID,
        )
        self._held.discard((line_no, digest))
