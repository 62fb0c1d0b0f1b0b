"""The PostgreSQL journal: one batch shared by any number of workers on any number of machines.

``journal="postgresql://user:password@host/db"`` (library) or ``--journal postgresql://…`` (CLI).
Every worker runs the same batch over the same input; none is told which lines are its own:

- :meth:`PostgresJournal.prepare` registers every line (``pending``) once, whoever comes first;
- :meth:`PostgresJournal.claim` hands out lines atomically (``SELECT … FOR UPDATE SKIP LOCKED``):
  no two workers ever hold one line. A claim carries a *lease* (``lease_until``, on the database's
  clock) that the engine renews; each claim gets a fresh *token* that every later write of the line
  must present, so a worker whose line was taken over learns it at its next write
  (:class:`~.errors.LeaseLost`) instead of overwriting the new holder's progress;
- a line whose worker died is claimed again once its lease expired: resumed by id when its id was
  committed (``created``), and reported unknown — never created again — when it was ``creating``
  (the create may have reached the server, and nobody knows its id). Only the caller's
  :class:`~.journal.RetryPolicy` turns an unknown line back into a create;
- the write ordering is the SQLite journal's: ``creating`` committed before the create is sent, the
  id the moment it answers (recorded even after a lost lease, so a paid id is never lost), the final
  state at the end. Each write is one transaction, committed before the method returns; a final
  state (and a note) without waiting for the server's WAL flush (``synchronous_commit`` off for that
  transaction): a database crash may undo it, and the line then reads ``created`` with its id.

Every claim is also logged in ``claims`` (worker, token, claimed_at, lease_until, ended_at, why it
ended), so an operator — and the tests — can check that no line was ever held by two live workers
at once, and ``batch-status`` can show each worker's share.

The tables live in their own PostgreSQL schema, ``comet_replicate``, created by the tool, and carry
a ``schema_version`` table: a newer layout than this release knows is refused, an older one migrated.

The connection URL is libpq's, plus two parameters of ours, removed before connecting:
``lease_seconds`` (default 60) and ``batch`` (the batch's name; default: the input file's name).
Credentials come from the URL or libpq's environment (``PGPASSWORD``, ``~/.pgpass``); no message
ever shows the password. Once the connection is lost the journal refuses new claims
(:class:`~.errors.JournalError`: the engine stops and exits with that error); the id of a create that
answers afterwards is still written through one fresh connection, or named in the error.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import JournalError, LeaseLost
from .items import BatchItem, Shard
from .journal import FINISHED_BAD, REREAD_BY_ID, Claim, Journal, JournalRow, LineState, RetryPolicy
from .plan import decide
from .remote import source_name
from .sqlite import default_worker_id

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "PostgresJournal",
    "display_url",
    "psycopg_module",
]

#: The PostgreSQL schema (namespace) holding the journal's tables.
SCHEMA = "comet_replicate"
#: Version 1: lines, claims, schema_version.
SCHEMA_VERSION = 1
#: How long a claim lasts without renewal; the engine renews well before (a third of it).
DEFAULT_LEASE_SECONDS = 60.0
MIN_LEASE_SECONDS = 2.0
#: The shortest wait between two claims while another worker's lease runs out.
MIN_WAIT_S = 0.2
#: Bounds on talking to the database: connecting, and noticing a peer that vanished mid-statement.
CONNECT_TIMEOUT_S = 10
TCP_USER_TIMEOUT_MS = 20_000
STATEMENT_TIMEOUT_MS = 30_000
#: A fixed key for the advisory lock that serialises schema creation and migration across workers.
_MIGRATION_LOCK = 0x636F6D6574  # "comet"

_MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE {SCHEMA}.lines (
    batch         text        NOT NULL,  -- the batch's name (default: the input file's name)
    line_no       integer     NOT NULL,  -- 1-based line of the input
    input_hash    text        NOT NULL,  -- sha256 of the model and the canonical JSON input
    model         text        NOT NULL,
    state         text        NOT NULL,  -- pending | creating | created | succeeded | failed | ...
    prediction_id text,
    status        text,                  -- last server status seen
    error         text,
    outputs       jsonb       NOT NULL DEFAULT '[]',  -- saved outputs (paths or URLs)
    creates       integer     NOT NULL DEFAULT 0,     -- create requests sent for this line
    previous_ids  jsonb       NOT NULL DEFAULT '[]',  -- ids of earlier predictions of the line
    worker        text,                  -- the worker holding (or that last held) the line
    claim_token   bigint,                -- the current (or last) claim; writes must present it
    lease_until   timestamptz,           -- NULL: nobody holds the line
    sent_at       timestamptz,           -- when the last create was about to be sent
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch, line_no, input_hash)
);
-- Lines not yet succeeded, in line order: what claims and waits scan (late in a big batch, few).
CREATE INDEX lines_open ON {SCHEMA}.lines (batch, line_no) WHERE state <> 'succeeded';
CREATE INDEX lines_claim ON {SCHEMA}.lines (claim_token);  -- renewals and releases find lines by claim
CREATE TABLE {SCHEMA}.claims (
    token        bigserial   PRIMARY KEY,
    batch        text        NOT NULL,
    line_no      integer     NOT NULL,
    input_hash   text        NOT NULL,
    worker       text        NOT NULL,
    action       text        NOT NULL,  -- create | resume
    claimed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until  timestamptz NOT NULL,  -- last renewal's expiry
    ended_at     timestamptz,           -- NULL while held (or when the worker died)
    end_reason   text                   -- the state it ended in, released, lease_lost
);
CREATE INDEX claims_line ON {SCHEMA}.claims (batch, line_no, input_hash);
""",
}

_ROW_FIELDS = (
    "line_no", "state", "prediction_id", "status", "error", "outputs", "creates", "previous_ids",
    "input_hash", "worker",
)  # fmt: skip


def _columns(table: str = "") -> str:
    """The SELECT list of a :class:`JournalRow` (``table``: a qualifying alias)."""
    prefix = f"{table}." if table else ""
    return ", ".join([*(prefix + name for name in _ROW_FIELDS), f"extract(epoch FROM {prefix}sent_at)"])


_ROW_COLUMNS = _columns()
#: Set inside a write's own statement: this transaction commits without waiting for the WAL flush.
_ASYNC_COMMIT = "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit "
_RESTARTABLE = (LineState.PENDING.value, LineState.NOT_CREATED.value, LineState.INTERRUPTED.value)


def psycopg_module() -> ModuleType:
    """psycopg 3, imported on first use (the ``postgresql`` extra)."""
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        raise JournalError(
            "a postgresql:// journal needs psycopg 3: pip install 'comet-replicate[postgresql]'"
        ) from None


def display_url(url: str) -> str:
    """The URL without its password (and without our own parameters), for every message."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    host = netloc[2]
    user = netloc[0].split(":", 1)[0] if netloc[1] else ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host, query=""))


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """(libpq URL, our parameters): ``lease_seconds`` and ``batch`` are ours, the rest libpq's."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    theirs: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (ours.__setitem__(key, value) if key in ("lease_seconds", "batch") else theirs.append((key, value)))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def _reason(exc: BaseException) -> str:
    """libpq's message in one line (it never contains the password)."""
    text = " ".join(str(exc).split())
    if "password authentication failed" in text:
        return text[text.index("password authentication failed") :].split(" (")[0] + (
            " (check the user and password in the URL, PGPASSWORD or ~/.pgpass)"
        )
    if "does not exist" in text and "database" in text:
        return text[text.index("database") :]
    return text[:300] or type(exc).__name__


def _connect(url: str, location: str, application_name: str) -> psycopg.Connection[Any]:
    """An autocommit connection with every wait bounded (connect, dead peer, statement)."""
    psycopg = psycopg_module()
    try:
        return psycopg.connect(  # type: ignore[no-any-return]
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name[:63],
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=3,
            keepalives_count=3,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        )
    except psycopg.Error as exc:
        raise JournalError(
            f"cannot connect to journal {location}: {_reason(exc)}", location=location
        ) from None


def read_status(url: str, batch: str | None) -> list[tuple[str, str | None, str, bool, int, str | None]]:
    """(batch, worker, state, live, count, last write) groups of a PostgreSQL journal, read-only."""
    psycopg = psycopg_module()
    libpq_url, ours = _split_url(url)
    batch = batch or ours.get("batch")
    location = display_url(url)
    with _connect(libpq_url, location, "comet-replicate batch-status") as conn:
        try:
            found = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.schema_version",)
            ).fetchone()
            if not found or not found[0]:
                raise JournalError(f"{location} holds no comet-replicate journal yet", location=location)
            version = conn.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version").fetchone()
            if version and version[0] is not None and int(version[0]) > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {location} has schema version {version[0]}, newer than this comet-replicate "
                    f"understands ({SCHEMA_VERSION}); upgrade comet-replicate",
                    location=location,
                )
            rows = conn.execute(
                f"SELECT batch, worker, state, coalesce(lease_until > now(), false), count(*), "
                f"to_char(max(updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                f"FROM {SCHEMA}.lines WHERE (%(batch)s::text IS NULL OR batch = %(batch)s) "
                "GROUP BY 1, 2, 3, 4",
                {"batch": batch},
            ).fetchall()
        except psycopg.Error as exc:
            raise JournalError(f"journal {location}: {_reason(exc)}", location=location) from None
    return [(str(b), w, str(st), bool(live), int(n), seen) for b, w, st, live, n, seen in rows]


@dataclass
class _Held:
    """A line this worker holds: its claim token and the ``creates`` count of its own create."""

    token: int
    creates: int | None = None


class PostgresJournal(Journal):
    """Durable per-line state of a batch in PostgreSQL, shared by every worker running it."""

    def __init__(
        self,
        url: str,
        *,
        source: str,
        shard: Shard | None = None,
        worker_id: str | None = None,
        lease_seconds: float | None = None,
        batch: str | None = None,
    ) -> None:
        self._url, ours = _split_url(url)
        self.location = display_url(url)
        self.worker_id = worker_id or default_worker_id()
        self.batch = batch or ours.get("batch") or source_name(source)
        if shard is not None:
            self.batch = f"{self.batch}#shard-{shard.index}-of-{shard.count}"
        lease = lease_seconds if lease_seconds is not None else ours.get("lease_seconds")
        try:
            self._lease = float(lease) if lease is not None else DEFAULT_LEASE_SECONDS
        except ValueError:
            raise JournalError(
                f"journal {self.location}: lease_seconds must be a number, not {lease!r}",
                location=self.location,
            ) from None
        self.lease_seconds = self._lease
        if not (math.isfinite(self._lease) and self._lease >= MIN_LEASE_SECONDS):
            raise JournalError(
                f"journal {self.location}: lease_seconds must be a finite number of seconds, at least "
                f"{MIN_LEASE_SECONDS:g}",
                location=self.location,
            )
        self._held: dict[tuple[int, str], _Held] = {}
        self._broken: str | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connection -------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return _connect(self._url, self.location, f"comet-replicate {self.worker_id}")

    @property
    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._broken is not None:
            raise JournalError(
                f"journal {self.location} is unusable: {self._broken or 'closed'}", location=self.location
            )
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction; a lost connection marks the journal broken and raises JournalError."""
        psycopg = psycopg_module()
        conn = self.connection
        try:
            with conn.transaction(), conn.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                self._broken = f"lost the connection to the database ({_reason(exc)})"
                raise JournalError(
                    f"journal {self.location}: {self._broken}", location=self.location
                ) from None
            raise JournalError(f"journal {self.location}: {_reason(exc)}", location=self.location) from None
        except psycopg.Error as exc:
            raise JournalError(f"journal {self.location}: {_reason(exc)}", location=self.location) from None

    def close(self) -> None:
        if self._held and self._conn is not None and self._broken is None:
            with contextlib.suppress(JournalError):  # closing anyway: the leases will run out
                self.release(list(self._held))
        self._held.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- schema -----------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create or upgrade the tables, one worker at a time (an advisory lock held for the transaction)."""
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version "
                "(version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_version")
            found = cur.fetchone()
            version = int(found[0]) if found else 0
            if version > SCHEMA_VERSION:
                raise JournalError(
                    f"journal {self.location} has schema version {version}, newer than this comet-replicate "
                    f"understands ({SCHEMA_VERSION}); upgrade comet-replicate",
                    location=self.location,
                )
            for step in range(version + 1, SCHEMA_VERSION + 1):
                cur.execute(_MIGRATIONS[step])
                cur.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)", (step,))

    # -- reading ----------------------------------------------------------------------------------

    def rows(self) -> list[JournalRow]:
        with self._tx() as cur:
            cur.execute(
                f"SELECT {_ROW_COLUMNS} FROM {SCHEMA}.lines WHERE batch = %s ORDER BY line_no, input_hash",
                (self.batch,),
            )
            return [_row(values) for values in cur.fetchall()]

    def live_lines(self) -> set[tuple[int, str]]:
        """Lines some worker holds right now (its lease has not expired on the database's clock)."""
        with self._tx() as cur:
            cur.execute(
                f"SELECT line_no, input_hash FROM {SCHEMA}.lines "
                "WHERE batch = %s AND lease_until IS NOT NULL AND lease_until > now()",
                (self.batch,),
            )
            return {(int(line), str(digest)) for line, digest in cur.fetchall()}

    # -- registering and claiming -----------------------------------------------------------------

    def prepare(self, items: Sequence[BatchItem]) -> None:
        """Register every line once (``pending``), re-key moved rows by digest, and remember ``items``
        as this worker's own (only they are claimed: another worker's file may differ)."""
        lines = [item.line for item in items]
        digests = [item.digest for item in items]
        models = [item.model for item in items]
        with self._tx() as cur:
            # Workers of one batch register one after the other, so a moved row is re-keyed once.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.batch,))
            cur.execute(
                f"""
                WITH wanted AS (
                    SELECT * FROM unnest(%(lines)s::integer[], %(digests)s::text[]) AS w(line_no, input_hash)
                ), missing AS (  -- items with no row under their line
                    SELECT w.* FROM wanted w WHERE NOT EXISTS (
                        SELECT 1 FROM {SCHEMA}.lines l
                        WHERE l.batch = %(batch)s AND l.line_no = w.line_no AND l.input_hash = w.input_hash)
                ), orphan AS (  -- rows no item names, not held by a live worker
                    SELECT l.line_no, l.input_hash,
                           row_number() OVER (PARTITION BY l.input_hash ORDER BY l.line_no) AS n
                    FROM {SCHEMA}.lines l
                    WHERE l.batch = %(batch)s AND (l.lease_until IS NULL OR l.lease_until < now())
                      AND NOT EXISTS (SELECT 1 FROM wanted w
                                      WHERE w.line_no = l.line_no AND w.input_hash = l.input_hash)
                ), target AS (
                    SELECT m.line_no, m.input_hash,
                           row_number() OVER (PARTITION BY m.input_hash ORDER BY m.line_no) AS n
                    FROM missing m
                )
                UPDATE {SCHEMA}.lines l SET line_no = t.line_no, updated_at = now()
                FROM orphan o JOIN target t USING (input_hash, n)
                WHERE l.batch = %(batch)s AND l.line_no = o.line_no AND l.input_hash = o.input_hash
                """,
                {"lines": lines, "digests": digests, "batch": self.batch},
            )
            cur.execute(
                f"""
                INSERT INTO {SCHEMA}.lines (batch, line_no, input_hash, model, state)
                SELECT %s, line_no, input_hash, model, 'pending'
                FROM unnest(%s::integer[], %s::text[], %s::text[]) AS i(line_no, input_hash, model)
                ON CONFLICT DO NOTHING
                """,
                (self.batch, lines, digests, models),
            )
            if cur.rowcount > 0:  # fresh rows: give the planner their numbers before the first claim
                cur.execute(f"ANALYZE {SCHEMA}.lines")
            cur.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS comet_items "
                "(line_no integer NOT NULL, input_hash text NOT NULL, taken boolean NOT NULL DEFAULT false, "
                "PRIMARY KEY (line_no, input_hash))"
            )
            cur.execute("TRUNCATE comet_items")
            with cur.copy("COPY comet_items (line_no, input_hash) FROM STDIN") as copy:
                for item in items:
                    copy.write_row((item.line, item.digest))
            cur.execute("ANALYZE comet_items")  # temporary tables are never analyzed on their own
        self._held.clear()

    def claim(self, limit: int, policy: RetryPolicy) -> list[Claim]:
        """Up to ``limit`` of this worker's lines that need work and that no live worker holds."""
        if limit <= 0:
            return []
        with self._tx() as cur:
            cur.execute(
                f"""
                WITH candidates AS (
                    SELECT l.line_no, l.input_hash
                    FROM {SCHEMA}.lines l
                    WHERE l.batch = %(batch)s AND l.state <> 'succeeded'
                      AND EXISTS (SELECT 1 FROM comet_items m WHERE m.line_no = l.line_no
                                  AND m.input_hash = l.input_hash AND NOT m.taken)
                      AND (l.lease_until IS NULL OR l.lease_until < now())
                      AND (l.state = ANY(%(restartable)s)
                           OR (l.state = 'created' AND l.prediction_id IS NOT NULL)
                           OR (%(retry_failed)s AND l.state = ANY(%(bad)s))
                           OR (l.state = 'creating'
                               AND (%(retry_unknown)s OR l.line_no = ANY(%(retry_lines)s))))
                    ORDER BY l.line_no
                    LIMIT %(limit)s
                    FOR UPDATE OF l SKIP LOCKED
                ), logged AS (
                    INSERT INTO {SCHEMA}.claims (batch, line_no, input_hash, worker, action, lease_until)
                    SELECT %(batch)s, c.line_no, c.input_hash, %(worker)s,
                           CASE WHEN l.state = 'created' THEN 'resume' ELSE 'create' END,
                           now() + make_interval(secs => %(lease)s)
                    FROM candidates c JOIN {SCHEMA}.lines l
                      ON l.batch = %(batch)s AND l.line_no = c.line_no AND l.input_hash = c.input_hash
                    RETURNING token, line_no, input_hash, lease_until
                )
                UPDATE {SCHEMA}.lines l
                SET worker = %(worker)s, claim_token = g.token, lease_until = g.lease_until,
                    updated_at = now()
                FROM logged g
                WHERE l.batch = %(batch)s AND l.line_no = g.line_no AND l.input_hash = g.input_hash
                RETURNING g.token, {_columns("l")}
                """,
                {
                    "batch": self.batch,
                    "worker": self.worker_id,
                    "lease": self._lease,
                    "limit": limit,
                    "restartable": list(_RESTARTABLE),
                    "bad": list(FINISHED_BAD),
                    "retry_failed": policy.retry_failed,
                    "retry_unknown": policy.retry_unknown,
                    "retry_lines": sorted(policy.retry_lines),
                },
            )
            found = cur.fetchall()
            cur.execute(
                "UPDATE comet_items SET taken = true "
                "FROM unnest(%s::integer[], %s::text[]) AS c(line_no, input_hash) "
                "WHERE comet_items.line_no = c.line_no AND comet_items.input_hash = c.input_hash",
                ([int(v[1]) for v in found], [str(v[9]) for v in found]),
            )
        claims: list[Claim] = []
        for values in sorted(found, key=lambda v: int(v[1])):
            row = _row(values[1:])
            action = decide(row, policy)  # the one place the resume rules live; SQL only pre-filters
            key = (row.line_no, row.digest)
            self._held[key] = _Held(token=int(values[0]))
            if action == "create":
                claims.append(Claim(row.line_no, row.digest, "create"))
            elif action == "resume":
                claims.append(Claim(row.line_no, row.digest, "resume", row.prediction_id))
            else:  # pragma: no cover - the SQL filter and decide() disagree: give the line back
                self.release([key])
        return claims

    def wait_hint(self) -> float | None:
        """After :meth:`claim` gave nothing: how long to wait before asking again, or None when no
        line is left that this worker could still take.

        Lines of this worker's input that another worker holds, unfinished, may come free: when
        that worker dies, its lease runs out and the line is claimable (a ``created`` one resumed by
        id). Waiting for them is how a dead worker's lines get taken over at all; the wait is the
        soonest lease end, asked again at least every third of a lease so a finished run ends soon.
        """
        with self._tx() as cur:
            cur.execute(
                f"""
                SELECT extract(epoch FROM min(l.lease_until) - now())
                FROM {SCHEMA}.lines l
                WHERE l.batch = %(batch)s AND l.state <> 'succeeded' AND l.state <> ALL(%(final)s)
                  AND l.lease_until > now()
                  AND EXISTS (SELECT 1 FROM comet_items m WHERE m.line_no = l.line_no
                              AND m.input_hash = l.input_hash AND NOT m.taken)
                """,
                {"batch": self.batch, "final": [LineState.SUCCEEDED.value, *FINISHED_BAD]},
            )
            found = cur.fetchone()
        if found is None or found[0] is None:
            return None
        return min(max(float(found[0]), MIN_WAIT_S), self._lease / 3)

    def renew(self, lines: Sequence[tuple[int, str]]) -> None:
        """Extend the leases of held lines; LeaseLost names the ones another worker took over."""
        keys = [key for key in lines if key in self._held]
        if not keys:
            return
        tokens = [self._held[key].token for key in keys]
        with self._tx() as cur:
            cur.execute(
                f"""
                WITH renewed AS (
                    UPDATE {SCHEMA}.lines SET lease_until = now() + make_interval(secs => %(lease)s)
                    WHERE batch = %(batch)s AND claim_token = ANY(%(tokens)s) AND worker = %(worker)s
                      AND lease_until IS NOT NULL
                    RETURNING claim_token, lease_until
                )
                UPDATE {SCHEMA}.claims c SET lease_until = r.lease_until
                FROM renewed r WHERE c.token = r.claim_token
                RETURNING c.token
                """,
                {
                    "lease": self._lease,
                    "batch": self.batch,
                    "tokens": tokens,
                    "worker": self.worker_id,
                },
            )
            kept = {int(values[0]) for values in cur.fetchall()}
        lost = [key for key in keys if self._held[key].token not in kept]
        if lost:
            self._lose(lost)

    def _lose(self, keys: Sequence[tuple[int, str]]) -> None:
        """Forget lines another worker took over, log it, and raise LeaseLost naming them."""
        tokens = [self._held.pop(key).token for key in keys if key in self._held]
        if self._broken is None:
            try:
                with self._tx() as cur:
                    cur.execute(
                        f"UPDATE {SCHEMA}.claims SET ended_at = clock_timestamp(), end_reason = 'lease_lost' "
                        "WHERE token = ANY(%s) AND ended_at IS NULL",
                        (tokens,),
                    )
            except JournalError:
                pass
        lines = ", ".join(str(line) for line, _ in sorted(keys))
        raise LeaseLost(
            f"journal {self.location}: lost the claim on line(s) {lines} (lease expired; another worker "
            "may hold them now)",
            location=self.location,
            lines=tuple(sorted(keys)),
        )

    def release(self, lines: Sequence[tuple[int, str]]) -> None:
        """Give lines back unfinished: their state stays, another worker may claim them at once."""
        tokens = [self._held.pop(key).token for key in lines if key in self._held]
        if not tokens:
            return
        self._end(tokens, "released")

    def _end(self, tokens: list[int], reason: str, cur: psycopg.Cursor[Any] | None = None) -> None:
        statement = (
            f"WITH freed AS (UPDATE {SCHEMA}.lines SET lease_until = NULL, updated_at = now() "
            "WHERE batch = %(batch)s AND claim_token = ANY(%(tokens)s) RETURNING claim_token) "
            f"UPDATE {SCHEMA}.claims SET ended_at = clock_timestamp(), end_reason = %(reason)s "
            "WHERE token = ANY(%(tokens)s) AND ended_at IS NULL"
        )
        values = {"batch": self.batch, "tokens": tokens, "reason": reason}
        if cur is not None:
            cur.execute(statement, values)
            return
        with self._tx() as own:
            own.execute(statement, values)

    # -- writing a held line ----------------------------------------------------------------------

    def _token(self, line_no: int, digest: str) -> int:
        held = self._held.get((line_no, digest))
        if held is None:
            raise LeaseLost(
                f"journal {self.location}: line {line_no} is not held by this worker",
                location=self.location,
                lines=((line_no, digest),),
            )
        return held.token

    def mark_creating(self, line_no: int, digest: str, model: str) -> None:
        """``creating``, committed before the create is sent; also renews the lease (a sign of life)."""
        token = self._token(line_no, digest)
        with self._tx() as cur:
            cur.execute(
                f"""
                UPDATE {SCHEMA}.lines SET state = 'creating', model = %(model)s,
                    previous_ids = CASE WHEN prediction_id IS NULL THEN previous_ids
                                        ELSE previous_ids || to_jsonb(prediction_id) END,
                    prediction_id = NULL, status = NULL, error = NULL, outputs = '[]',
                    creates = creates + 1, lease_until = now() + make_interval(secs => %(lease)s),
                    sent_at = clock_timestamp(),
                    updated_at = now()
                WHERE batch = %(batch)s AND line_no = %(line)s AND input_hash = %(digest)s
                  AND claim_token = %(token)s AND lease_until IS NOT NULL
                RETURNING creates, lease_until
                """,
                {
                    "model": model,
                    "lease": self._lease,
                    "batch": self.batch,
                    "line": line_no,
                    "digest": digest,
                    "token": token,
                },
            )
            found = cur.fetchone()
            if found is not None:  # the claims log keeps the lease it really had
                cur.execute(
                    f"UPDATE {SCHEMA}.claims SET lease_until = %s WHERE token = %s", (found[1], token)
                )
        if found is None:
            self._lose([(line_no, digest)])
        self._held[(line_no, digest)].creates = int(found[0]) if found else None

    def mark_created(self, line_no: int, digest: str, prediction_id: str, status: str | None) -> None:
        """Commit the id. It is written even when the lease was lost meanwhile (a paid id is never
        dropped): as the line's id while the line still waits on this very create, else into
        ``previous_ids``; LeaseLost follows in that case so the worker stops working on the line."""
        held = self._held.get((line_no, digest))
        attempt = held.creates if held else None
        params = {
            "id": prediction_id,
            "status": status,
            "batch": self.batch,
            "line": line_no,
            "digest": digest,
            "token": held.token if held else -1,
            "creates": attempt if attempt is not None else -1,
        }
        statement = f"""
            WITH mine AS (  -- the line still waits for the answer of this worker's own create
                UPDATE {SCHEMA}.lines SET state = 'created', prediction_id = %(id)s, status = %(status)s,
                    error = NULL, updated_at = now()
                WHERE batch = %(batch)s AND line_no = %(line)s AND input_hash = %(digest)s
                  AND state = 'creating' AND creates = %(creates)s
                RETURNING claim_token = %(token)s AND lease_until IS NOT NULL AS still_held
            ), kept AS (  -- otherwise (someone created the line again since): keep the id on record
                UPDATE {SCHEMA}.lines SET previous_ids = previous_ids || to_jsonb(%(id)s::text),
                    updated_at = now()
                WHERE batch = %(batch)s AND line_no = %(line)s AND input_hash = %(digest)s
                  AND NOT EXISTS (SELECT 1 FROM mine) AND NOT previous_ids ? %(id)s
                  AND prediction_id IS DISTINCT FROM %(id)s
                RETURNING false AS still_held
            )
            SELECT still_held FROM mine UNION ALL SELECT still_held FROM kept
        """
        try:
            with self._tx() as cur:
                cur.execute(statement, params)
                found = cur.fetchone()
        except JournalError as exc:
            found = self._record_id_again(statement, params, exc)
        if found is None or not found[0]:
            self._lose([(line_no, digest)])

    def _record_id_again(self, statement: str, params: dict[str, Any], error: JournalError) -> Any:
        """The connection died before a paid id was committed: one fresh connection to write it."""
        if self._broken is None:
            raise error
        try:
            with self._connect() as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchone()
        except Exception:
            raise JournalError(
                f"journal {self.location}: {self._broken}; prediction {params['id']} of line "
                f"{params['line']} was created but could not be recorded (the line stays unknown; "
                f"`comet-replicate wait {params['id']}` fetches its result)",
                location=self.location,
            ) from None

    def _update_held(
        self,
        line_no: int,
        digest: str,
        assignments: str,
        values: dict[str, Any],
        end: str | None,
        *,
        durable: bool = True,
    ) -> None:
        """One line's write, with its lease's token. Not ``durable``: committed without waiting for
        the server's WAL flush (``synchronous_commit`` off for this transaction alone, set by the
        statement itself: no round trip more), for writes that only record how a prediction ended."""
        token = self._token(line_no, digest)
        with self._tx() as cur:
            cur.execute(
                f"UPDATE {SCHEMA}.lines SET {assignments}, updated_at = now() "  # fixed SQL, values bound
                f"{'' if durable else _ASYNC_COMMIT}"
                "WHERE batch = %(batch)s AND line_no = %(line)s AND input_hash = %(digest)s "
                "AND claim_token = %(token)s AND lease_until IS NOT NULL",
                {**values, "batch": self.batch, "line": line_no, "digest": digest, "token": token},
            )
            if cur.rowcount != 1:
                lost = True
            else:
                lost = False
                if end is not None:
                    self._end([token], end, cur)
        if lost:
            self._lose([(line_no, digest)])
        if end is not None:
            self._held.pop((line_no, digest), None)

    def mark_not_created(self, line_no: int, digest: str, error: str) -> None:
        self._update_held(
            line_no,
            digest,
            "state = 'not_created', error = %(error)s",
            {"error": error},
            LineState.NOT_CREATED,
        )

    def note(self, line_no: int, digest: str, *, status: str | None = None, error: str | None = None) -> None:
        """Keeps the line's state, so a re-run does the same without it: not waited for on the server."""
        assignments = "error = %(error)s" + (", status = %(status)s" if status is not None else "")
        self._update_held(
            line_no, digest, assignments, {"error": error, "status": status}, None, durable=False
        )

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
        """How a prediction ended, not waited for on the server: lost to a database crash, the line
        reads ``created`` and whoever resumes it finds the same end by its id. ``interrupted`` is."""
        self._update_held(
            line_no,
            digest,
            "state = %(state)s, status = %(status)s, error = %(error)s, outputs = %(outputs)s::jsonb",
            {"state": str(state), "status": status, "error": error, "outputs": json.dumps(list(outputs))},
            str(state),
            durable=str(state) not in REREAD_BY_ID,
        )

    def held(self) -> list[tuple[int, str]]:
        """The lines this worker holds now."""
        return sorted(self._held)


def _row(values: Sequence[Any]) -> JournalRow:
    return JournalRow(
        line_no=int(values[0]),
        state=str(values[1]),
        prediction_id=values[2],
        status=values[3],
        error=values[4],
        outputs=[str(v) for v in (values[5] or [])],
        creates=int(values[6]),
        previous_ids=[str(v) for v in (values[7] or [])],
        digest=str(values[8]),
        worker=values[9],
        sent_at=float(values[10]) if values[10] is not None else None,
    )
