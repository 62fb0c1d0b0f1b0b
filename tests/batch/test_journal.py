"""The SQLite journal behind the Journal interface: resume rules, claims, schema versions, shards."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from comet_replicate import BatchItem, Journal, JournalError, SQLiteJournal
from comet_replicate._batch import (
    SCHEMA_VERSION,
    JournalRow,
    RetryPolicy,
    Shard,
    decide,
    default_journal_path,
    open_journal,
    summarize,
)
from comet_replicate._constants import JOURNAL_WAL_CHECKPOINT_PAGES

from .conftest import SCHNELL


def _row(state: str, prediction_id: str | None = None, line_no: int = 1) -> JournalRow:
    return JournalRow(line_no, state, prediction_id, None, None, [], 1, [])


@pytest.mark.parametrize(
    ("row", "policy", "action"),
    [
        (None, RetryPolicy(), "create"),
        (_row("pending"), RetryPolicy(), "create"),
        (_row("succeeded", "p"), RetryPolicy(retry_failed=True, retry_unknown=True), "done"),
        (_row("created", "p"), RetryPolicy(retry_unknown=True), "resume"),
        (_row("created", None), RetryPolicy(), "create"),
        (_row("failed", "p"), RetryPolicy(), "failed"),
        (_row("canceled", "p"), RetryPolicy(retry_failed=True), "create"),
        (_row("aborted", "p"), RetryPolicy(retry_unknown=True), "failed"),
        (_row("creating"), RetryPolicy(retry_failed=True), "unknown"),
        (_row("creating"), RetryPolicy(retry_unknown=True), "create"),
        (_row("creating", line_no=3), RetryPolicy(retry_lines=frozenset({3})), "create"),
        (_row("creating", line_no=4), RetryPolicy(retry_lines=frozenset({3})), "unknown"),
        (_row("not_created"), RetryPolicy(), "create"),
        (_row("interrupted", "p"), RetryPolicy(), "create"),
    ],
)
def test_resume_rules(row: JournalRow | None, policy: RetryPolicy, action: str) -> None:
    assert decide(row, policy) == action


def _items(count: int) -> list[BatchItem]:
    return [BatchItem(n, SCHNELL, {"prompt": f"boat {n}"}) for n in range(1, count + 1)]


def test_claims_follow_the_rules_and_never_hand_out_a_line_twice_in_a_run(tmp_path: Path) -> None:
    items = _items(5)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        assert isinstance(journal, Journal) and journal.lease_seconds is None
        journal.prepare(items)
        first = journal.claim(2, RetryPolicy())
        assert [(c.line_no, c.action) for c in first] == [(1, "create"), (2, "create")]
        for claim in first:
            journal.mark_creating(claim.line_no, claim.digest, SCHNELL)
        journal.mark_created(1, items[0].digest, "pid-1", "starting")
        journal.mark_finished(1, items[0].digest, "succeeded", status="succeeded", outputs=["a.webp"])
        journal.mark_creating(3, items[2].digest, SCHNELL)
        journal.mark_created(3, items[2].digest, "pid-3", "processing")
        journal.mark_creating(4, items[3].digest, SCHNELL)
        journal.mark_created(4, items[3].digest, "pid-4", "processing")
        journal.mark_finished(4, items[3].digest, "failed", status="failed", error="NSFW")
        rest = journal.claim(10, RetryPolicy())
        assert [(c.line_no, c.action) for c in rest] == [(3, "resume"), (5, "create")]
        assert rest[0].prediction_id == "pid-3"
        assert journal.claim(10, RetryPolicy(retry_failed=True, retry_unknown=True)) == []
    with SQLiteJournal(path, "in.jsonl") as journal:
        journal.prepare(items)
        plan = summarize(items, journal.rows(), RetryPolicy())
        assert (plan.done, plan.resume, plan.unknown, plan.failed, plan.create) == (1, 1, 1, 1, 1)
        again = journal.claim(10, RetryPolicy(retry_failed=True))
        assert [(c.line_no, c.action) for c in again] == [(3, "resume"), (4, "create"), (5, "create")]


@pytest.mark.parametrize("json1", [True, False], ids=["in-one-statement", "read-first"])
def test_recreating_a_line_keeps_the_old_id_and_counts_creates(tmp_path: Path, json1: bool) -> None:
    [item] = _items(1)
    with SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl", worker_id="w1") as journal:
        journal._json1 = json1  # an SQLite without the JSON functions reads the row first
        journal.mark_creating(1, item.digest, SCHNELL)
        journal.mark_created(1, item.digest, "pid-1", "starting")
        journal.mark_finished(1, item.digest, "failed", status="failed", error="x")
        journal.mark_creating(1, item.digest, SCHNELL)
        journal.mark_creating(1, item.digest, SCHNELL)  # never answered: no id to keep
        journal.mark_created(1, item.digest, "pid-2", "starting")
        journal.mark_creating(1, item.digest, SCHNELL)
        [row] = journal.rows()
    assert (row.state, row.prediction_id, row.previous_ids, row.creates) == (
        "creating",
        None,
        ["pid-1", "pid-2"],
        4,
    )
    assert row.worker == "w1" and row.digest == item.digest


def _committed(path: Path) -> dict[int, str]:
    """Line → state as another connection sees it: only what was committed. (A connection's own
    `with` only commits; `closing` closes it, or Python 3.13 warns when it is collected.)"""
    with closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT line_no, state FROM lines").fetchall())


def test_writes_in_a_group_are_committed_together_when_it_ends(tmp_path: Path) -> None:
    items = _items(3)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        with journal.group():
            for item in items:
                journal.mark_creating(item.line, item.digest, SCHNELL)
            assert _committed(path) == {}  # nothing of the group is durable before it ends
            assert [row.state for row in journal.rows()] == ["creating"] * 3  # its own writes: seen
        assert _committed(path) == {1: "creating", 2: "creating", 3: "creating"}


def test_a_write_that_fails_in_a_group_leaves_nothing_and_the_others_commit(tmp_path: Path) -> None:
    items = _items(2)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        with journal.group():
            journal.mark_creating(1, items[0].digest, SCHNELL)
            with pytest.raises(JournalError):
                journal.mark_created(2, items[1].digest, "pid", None)  # no row: refused
            journal.mark_created(1, items[0].digest, "pid-1", "starting")
        [row] = journal.rows()
    assert (row.line_no, row.state, row.prediction_id) == (1, "created", "pid-1")
    assert _committed(path) == {1: "created"}


def test_a_group_that_raises_commits_none_of_its_writes(tmp_path: Path) -> None:
    [item] = _items(1)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        with pytest.raises(RuntimeError), journal.group():
            journal.mark_creating(1, item.digest, SCHNELL)
            raise RuntimeError("the group ends badly")
        assert journal.rows() == []
        journal.mark_creating(1, item.digest, SCHNELL)  # the journal is usable afterwards
    assert _committed(path) == {1: "creating"}


def test_a_write_that_fails_after_changing_its_row_leaves_nothing_and_the_group_commits_the_others(
    tmp_path: Path,
) -> None:
    items = _items(2)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        for item in items:
            journal.mark_creating(item.line, item.digest, SCHNELL)
        with closing(sqlite3.connect(path)) as db:  # the row is changed, then the write fails
            db.execute(
                "CREATE TRIGGER refuse AFTER UPDATE ON lines WHEN new.prediction_id = 'bad' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with journal.group():
            journal.mark_created(1, items[0].digest, "pid-1", "starting")
            with pytest.raises(JournalError, match="refused"):
                journal.mark_created(2, items[1].digest, "bad", "starting")
            journal.mark_finished(1, items[0].digest, "succeeded", status="succeeded", outputs=["a.webp"])
        with pytest.raises(JournalError, match="refused"):  # alone: nothing of it either
            journal.mark_created(2, items[1].digest, "bad", "starting")
        rows = {row.line_no: row for row in journal.rows()}
    assert (rows[1].state, rows[1].prediction_id, rows[1].outputs) == ("succeeded", "pid-1", ["a.webp"])
    assert (rows[2].state, rows[2].prediction_id) == ("creating", None)
    assert _committed(path) == {1: "succeeded", 2: "creating"}


def _statements(journal: SQLiteJournal) -> list[str]:
    """The statements the journal's connection executes from now on (first word each)."""
    seen: list[str] = []
    journal._db.set_trace_callback(lambda statement: seen.append(statement.split()[0]))
    return seen


def test_each_write_is_one_statement_alone_and_in_a_group(tmp_path: Path) -> None:
    [item] = _items(1)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        seen = _statements(journal)
        journal.mark_creating(1, item.digest, SCHNELL)  # alone: commits by itself, durable on return
        assert seen == ["INSERT"] and _committed(path) == {1: "creating"}
        journal.mark_created(1, item.digest, "pid-1", "starting")
        assert seen == ["INSERT", "UPDATE"] and _committed(path) == {1: "created"}
        seen.clear()
        with journal.group():
            journal.note(1, item.digest, status="processing")
            journal.note(1, item.digest, error="slow")
            journal.mark_finished(1, item.digest, "succeeded", status="succeeded", outputs=["a.webp"])
        assert seen == ["BEGIN", "UPDATE", "UPDATE", "UPDATE", "COMMIT"]
        [row] = journal.rows()
    assert (row.state, row.status, row.error, row.outputs) == ("succeeded", "succeeded", None, ["a.webp"])


def test_after_sqlite_rolled_a_group_back_no_write_of_it_commits_alone(tmp_path: Path) -> None:
    items = _items(2)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        with pytest.raises(JournalError), journal.group():
            journal.mark_creating(1, items[0].digest, SCHNELL)
            journal._db.execute("ROLLBACK")  # as SQLite does itself on a full disk or an I/O error
            with pytest.raises(JournalError, match="rolled back"):
                journal.mark_creating(2, items[1].digest, SCHNELL)
        assert _committed(path) == {}
        journal.mark_creating(2, items[1].digest, SCHNELL)  # the journal is usable afterwards
    assert _committed(path) == {2: "creating"}


def test_the_journal_opens_in_wal_at_full_sync_and_the_log_is_reused_after_its_checkpoints(
    tmp_path: Path,
) -> None:
    items = _items(3)
    path = tmp_path / "j.sqlite"
    with SQLiteJournal(path, "in.jsonl") as journal:
        settings = [
            journal._db.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "synchronous")
        ]
        assert settings == ["wal", 2]  # 2: FULL, an fsync of the log at every commit a re-run needs
        page = journal._db.execute("PRAGMA page_size").fetchone()[0]
        for item in items:
            journal.mark_creating(item.line, item.digest, SCHNELL)
        for n in range(3 * JOURNAL_WAL_CHECKPOINT_PAGES):  # one page per commit, at least
            journal.note(items[n % 3].line, items[n % 3].digest, status=f"processing {n}")
        log = Path(f"{path}-wal").stat().st_size
    # written again from its start after each checkpoint: never much more than one checkpoint's worth
    assert log <= (JOURNAL_WAL_CHECKPOINT_PAGES + 8) * (page + 24) + 32


def test_a_write_to_a_missing_row_is_a_journal_error(tmp_path: Path) -> None:
    with SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl") as journal, pytest.raises(JournalError):
        journal.mark_created(1, "nope", "pid", None)


def test_a_second_batch_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    with SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl"), pytest.raises(JournalError, match="in use"):
        SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl")
    SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl").close()  # free again once closed


def test_a_journal_of_another_shard_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    SQLiteJournal(path, "in.jsonl", shard=Shard(2, 4)).close()
    for other in (Shard(1, 4), Shard(2, 3), None):
        with pytest.raises(JournalError, match="belongs to shard 2/4"):
            SQLiteJournal(path, "in.jsonl", shard=other)
    SQLiteJournal(path, "in.jsonl", shard=Shard(2, 4)).close()


def test_default_journal_paths_differ_per_shard(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    assert default_journal_path(source).name == "in.jsonl.journal.sqlite"
    assert default_journal_path(source, Shard(2, 4)).name == "in.jsonl.shard-2-of-4.journal.sqlite"


def _v1_journal(path: Path, digest: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE lines (source TEXT NOT NULL, line_no INTEGER NOT NULL, input_hash TEXT NOT NULL,
            model TEXT NOT NULL, state TEXT NOT NULL, prediction_id TEXT, status TEXT, error TEXT,
            outputs TEXT, creates INTEGER NOT NULL DEFAULT 0, previous_ids TEXT NOT NULL DEFAULT '[]',
            updated_at TEXT NOT NULL, PRIMARY KEY (source, line_no, input_hash));
        INSERT INTO meta VALUES ('schema_version', '1');
        """
    )
    db.execute(
        "INSERT INTO lines VALUES "
        "('in.jsonl', 1, ?, ?, 'created', 'pid-1', 'starting', NULL, NULL, 1, '[]', 'x')",
        (digest, SCHNELL),
    )
    db.commit()
    db.close()


def test_a_version_1_journal_is_upgraded_in_place_and_keeps_its_lines(tmp_path: Path) -> None:
    [item] = _items(1)
    path = tmp_path / "old.sqlite"
    _v1_journal(path, item.digest)
    with SQLiteJournal(path, "in.jsonl") as journal:
        journal.prepare([item])
        assert [(c.action, c.prediction_id) for c in journal.claim(5, RetryPolicy())] == [("resume", "pid-1")]
        journal.mark_finished(1, item.digest, "succeeded", status="succeeded", outputs=["x.webp"])
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    row = db.execute("SELECT state, outputs, worker FROM lines").fetchone()
    db.close()
    assert meta == {"schema_version": str(SCHEMA_VERSION), "shard": ""}
    assert row[0] == "succeeded" and json.loads(row[1]) == ["x.webp"] and row[2]
    with pytest.raises(JournalError, match="belongs to an unsharded batch"):
        SQLiteJournal(path, "in.jsonl", shard=Shard(1, 2))


def test_a_journal_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    SQLiteJournal(path, "in.jsonl").close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="schema version 99, newer"):
        SQLiteJournal(path, "in.jsonl")


def test_a_file_that_is_not_a_database_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="cannot use journal"):
        SQLiteJournal(path, "in.jsonl")


def test_open_journal_picks_the_store_from_the_location(tmp_path: Path) -> None:
    with open_journal(tmp_path / "a.sqlite", source="in.jsonl") as journal:
        assert isinstance(journal, SQLiteJournal) and journal.location == str(tmp_path / "a.sqlite")
        assert open_journal(journal, source="ignored") is journal
    with open_journal(None, source=tmp_path / "in.jsonl", shard=Shard(1, 2)) as journal:
        assert journal.location.endswith("in.jsonl.shard-1-of-2.journal.sqlite")
    with pytest.raises(JournalError, match="unknown journal scheme 'mysql'"):
        open_journal("mysql://host/db", source="in.jsonl")
