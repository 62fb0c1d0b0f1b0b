"""The PostgreSQL journal against a real server: claims, leases, take-over, fencing, schema, errors.

Lease expiry is made to happen by moving ``lease_until`` into the past in the database (what the
clock would do after ``lease_seconds``), so no test sleeps for a lease or depends on timing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from comet_replicate._batch import (
    BatchItem,
    JournalError,
    LeaseLost,
    LineState,
    RetryPolicy,
    open_journal,
)
from comet_replicate._batch.postgres import SCHEMA, SCHEMA_VERSION, PostgresJournal, display_url

from tests.distributed._servers import PostgresServer
from tests.distributed.conftest import need

psycopg = need("psycopg")

MODEL = "black-forest-labs/flux-schnell"
POLICY = RetryPolicy()


def items(count: int, tag: str = "p") -> list[BatchItem]:
    return [BatchItem(n, MODEL, {"prompt": f"{tag} {n}"}) for n in range(1, count + 1)]


def worker(url: str, name: str, *, source: str = "prompts.jsonl") -> PostgresJournal:
    journal = open_journal(url, source=source, worker_id=name)
    assert isinstance(journal, PostgresJournal)
    return journal


def expire(url: str, line_no: int) -> None:
    """What the clock does to a lease nobody renews."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {SCHEMA}.lines SET lease_until = now() - interval '1 second' WHERE line_no = %s",
            (line_no,),
        )


def state_of(journal: PostgresJournal, line_no: int) -> tuple[str, str | None]:
    row = next(r for r in journal.rows() if r.line_no == line_no)
    return row.state, row.prediction_id


def test_the_schema_is_created_once_and_versioned(pg_url: str) -> None:
    worker(pg_url, "a").close()
    worker(pg_url, "b").close()
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute(f"SELECT version FROM {SCHEMA}.schema_version").fetchall()
    assert versions == [(SCHEMA_VERSION,)]


def test_a_schema_newer_than_this_release_is_refused(pg_url: str) -> None:
    worker(pg_url, "a").close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        worker(pg_url, "b")


def test_workers_registering_one_batch_make_one_row_per_line(pg_url: str) -> None:
    a, b = worker(pg_url, "a"), worker(pg_url, "b")
    a.prepare(items(5))
    b.prepare(items(5))
    rows = a.rows()
    assert [(r.line_no, r.state) for r in rows] == [(n, "pending") for n in range(1, 6)]
    a.close(), b.close()


def test_claims_of_two_workers_never_overlap_and_cover_every_line(pg_url: str) -> None:
    a, b = worker(pg_url, "a"), worker(pg_url, "b")
    for journal in (a, b):
        journal.prepare(items(25))
    taken: dict[str, list[int]] = {"a": [], "b": []}
    while True:
        got_a = a.claim(3, POLICY)
        got_b = b.claim(4, POLICY)
        taken["a"] += [c.line_no for c in got_a]
        taken["b"] += [c.line_no for c in got_b]
        if not got_a and not got_b:
            break
    assert not set(taken["a"]) & set(taken["b"])
    assert sorted(taken["a"] + taken["b"]) == list(range(1, 26))
    assert {r.worker for r in a.rows()} == {"a", "b"}
    a.close(), b.close()


def test_a_dead_workers_lines_are_resumed_by_id_or_reported_unknown_never_created_again(pg_url: str) -> None:
    dead = worker(pg_url, "dead")
    dead.prepare(items(3))
    assert [c.line_no for c in dead.claim(3, POLICY)] == [1, 2, 3]
    digests = {item.line: item.digest for item in items(3)}
    dead.mark_creating(1, digests[1], MODEL)
    dead.mark_created(1, digests[1], "pid-1", "starting")  # line 1: id known
    dead.mark_creating(2, digests[2], MODEL)  # line 2: create sent, answer lost with the worker
    # line 3: claimed, nothing sent. The worker dies (no release); its leases run out.
    dead._conn.close()  # type: ignore[union-attr]  # the process is gone: no goodbye
    for line in (1, 2, 3):
        expire(pg_url, line)

    heir = worker(pg_url, "heir")
    heir.prepare(items(3))
    claims = {c.line_no: c for c in heir.claim(10, POLICY)}
    assert claims[1].action == "resume" and claims[1].prediction_id == "pid-1"
    assert claims[3].action == "create"
    assert 2 not in claims  # unknown: the create may exist; never created again by default
    assert state_of(heir, 2) == ("creating", None)
    heir.close()


def test_retry_lines_hands_out_only_the_named_unknown_line(pg_url: str) -> None:
    first = worker(pg_url, "first")
    first.prepare(items(2))
    first.claim(2, POLICY)
    for item in items(2):
        first.mark_creating(item.line, item.digest, MODEL)
    first._conn.close()  # type: ignore[union-attr]
    expire(pg_url, 1), expire(pg_url, 2)
    second = worker(pg_url, "second")
    second.prepare(items(2))
    claims = second.claim(5, RetryPolicy(retry_lines=frozenset({2})))
    assert [(c.line_no, c.action) for c in claims] == [(2, "create")]
    second.close()


def test_a_worker_whose_line_was_taken_over_cannot_overwrite_it(pg_url: str) -> None:
    slow = worker(pg_url, "slow")
    slow.prepare(items(1))
    [claim] = slow.claim(1, POLICY)
    slow.mark_creating(1, claim.digest, MODEL)
    slow.mark_created(1, claim.digest, "pid-1", "starting")
    expire(pg_url, 1)
    fast = worker(pg_url, "fast")
    fast.prepare(items(1))
    assert [c.action for c in fast.claim(1, POLICY)] == ["resume"]
    with pytest.raises(LeaseLost, match="line"):
        slow.renew([(1, claim.digest)])
    with pytest.raises(LeaseLost):
        slow.mark_finished(1, claim.digest, LineState.FAILED, status="failed", error="late")
    fast.mark_finished(1, claim.digest, LineState.SUCCEEDED, status="succeeded", outputs=["s3://b/x.png"])
    row = fast.rows()[0]
    assert (row.state, row.prediction_id, row.outputs) == ("succeeded", "pid-1", ["s3://b/x.png"])
    slow.close(), fast.close()


def test_an_id_that_answers_late_is_recorded_even_after_the_line_was_created_again(pg_url: str) -> None:
    slow = worker(pg_url, "slow")
    slow.prepare(items(1))
    [claim] = slow.claim(1, POLICY)
    slow.mark_creating(1, claim.digest, MODEL)
    expire(pg_url, 1)
    other = worker(pg_url, "other")
    other.prepare(items(1))
    [again] = other.claim(1, RetryPolicy(retry_unknown=True))  # the operator said: create it again
    other.mark_creating(1, again.digest, MODEL)
    with pytest.raises(LeaseLost):  # the slow create answers now: kept on record, the line is not its own
        slow.mark_created(1, claim.digest, "pid-late", "starting")
    other.mark_created(1, again.digest, "pid-new", "starting")
    row = other.rows()[0]
    assert (row.state, row.prediction_id, row.previous_ids, row.creates) == (
        "created",
        "pid-new",
        ["pid-late"],
        2,
    )
    slow.close(), other.close()


def test_a_late_answer_on_an_expired_but_untaken_lease_is_the_lines_id(pg_url: str) -> None:
    slow = worker(pg_url, "slow")
    slow.prepare(items(1))
    [claim] = slow.claim(1, POLICY)
    slow.mark_creating(1, claim.digest, MODEL)
    expire(pg_url, 1)  # nobody can take a creating line over: the lease is still this worker's token
    slow.mark_created(1, claim.digest, "pid-1", "starting")
    slow.renew([(1, claim.digest)])
    assert state_of(slow, 1) == ("created", "pid-1")
    slow.close()


def test_the_claims_log_shows_each_claim_with_its_worker_and_end(pg_url: str) -> None:
    journal = worker(pg_url, "w1")
    journal.prepare(items(2))
    for claim in journal.claim(2, POLICY):
        journal.mark_creating(claim.line_no, claim.digest, MODEL)
        journal.mark_created(claim.line_no, claim.digest, f"pid-{claim.line_no}", "starting")
    journal.mark_finished(1, items(2)[0].digest, LineState.SUCCEEDED, status="succeeded")
    journal.close()  # line 2 is released, unfinished
    with psycopg.connect(pg_url) as conn:
        log = conn.execute(
            "SELECT line_no, worker, action, end_reason, ended_at >= claimed_at "
            f"FROM {SCHEMA}.claims ORDER BY line_no"
        ).fetchall()
    assert log == [(1, "w1", "create", "succeeded", True), (2, "w1", "create", "released", True)]
    resumed = worker(pg_url, "w2")
    resumed.prepare(items(2))
    assert [(c.line_no, c.action, c.prediction_id) for c in resumed.claim(5, POLICY)] == [
        (2, "resume", "pid-2")
    ]
    resumed.close()


def test_a_line_moved_by_an_edit_keeps_its_row(pg_url: str) -> None:
    journal = worker(pg_url, "w")
    journal.prepare(items(2))
    [first, _] = journal.claim(2, POLICY)
    journal.mark_creating(1, first.digest, MODEL)
    journal.mark_created(1, first.digest, "pid-1", "starting")
    journal.close()
    shifted = [BatchItem(n + 1, MODEL, {"prompt": f"p {n}"}) for n in (1, 2)]  # a line inserted above
    again = worker(pg_url, "w2")
    again.prepare([BatchItem(1, MODEL, {"prompt": "new"}), *shifted])
    rows = {r.line_no: (r.state, r.prediction_id) for r in again.rows()}
    assert rows[2] == ("created", "pid-1")
    assert rows[1] == ("pending", None)
    again.close()


def test_a_lost_connection_stops_claims_with_a_clear_error_and_still_records_a_paid_id(
    postgres: PostgresServer, pg_url: str
) -> None:
    journal = worker(pg_url, "doomed")
    journal.prepare(items(3))
    claims = journal.claim(2, POLICY)
    journal.mark_creating(1, claims[0].digest, MODEL)
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops this worker's session
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE '%doomed%'"
        )
    with pytest.raises(JournalError, match="lost the connection to the database"):
        journal.claim(1, POLICY)
    # The create of line 1 answers now: its id is written through one fresh connection ...
    journal.mark_created(1, claims[0].digest, "pid-late", "starting")
    reader = worker(pg_url, "reader")
    assert state_of(reader, 1) == ("created", "pid-late")
    # ... and everything else the worker asks fails with the same clear error: it stops.
    for attempt in (lambda: journal.claim(1, POLICY), lambda: journal.renew(journal.held())):
        with pytest.raises(JournalError, match="unusable: lost the connection to the database"):
            attempt()
    journal.close(), reader.close()


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (
            lambda pg: f"postgresql://postgres:x@127.0.0.1:{pg.port + 1 if pg.port < 65535 else 1}/postgres",
            "cannot connect to journal postgresql://postgres@127.0.0.1",
        ),
        (lambda pg: pg.url(password="wrong-password"), "password authentication failed"),
        (lambda pg: pg.url("no_such_db"), 'database "no_such_db" does not exist'),
    ],
    ids=["unreachable", "wrong-password", "missing-database"],
)
def test_a_journal_that_cannot_be_reached_is_one_line_without_the_password(
    postgres: PostgresServer, make_url: object, expected: str
) -> None:
    url = make_url(postgres)  # type: ignore[operator]
    with pytest.raises(JournalError) as caught:
        open_journal(url, source="p.jsonl")
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert postgres.password not in message and "wrong-password" not in message


def test_urls_are_shown_without_password_or_our_parameters() -> None:
    assert display_url("postgresql://u:secret@db.example:5432/jobs?lease_seconds=5") == (
        "postgresql://u@db.example:5432/jobs"
    )


def test_lease_and_batch_name_come_from_the_url(pg_url: str) -> None:
    journal = worker(pg_url + "?lease_seconds=7&batch=nightly", "w")
    assert (journal.lease_seconds, journal.batch) == (7.0, "nightly")
    journal.close()
    for bad in ("0.1", "inf", "nan"):
        with pytest.raises(
            JournalError, match="lease_seconds must be a finite number of seconds, at least 2"
        ):
            worker(pg_url + f"?lease_seconds={bad}", "w")


def test_a_worker_with_nothing_to_claim_waits_for_lines_others_hold_and_stops_when_none_are_left(
    pg_url: str,
) -> None:
    holder, waiter = worker(pg_url, "holder"), worker(pg_url, "waiter")
    holder.prepare(items(2))
    waiter.prepare(items(2))
    first, second = holder.claim(2, POLICY)
    assert waiter.claim(2, POLICY) == []
    hint = waiter.wait_hint()
    assert hint is not None and 0 < hint <= holder.lease_seconds / 3
    holder.mark_creating(1, first.digest, MODEL)
    holder.mark_created(1, first.digest, "pid-1", "starting")
    holder.mark_finished(1, first.digest, LineState.SUCCEEDED, status="succeeded")
    holder.mark_creating(2, second.digest, MODEL)
    holder.mark_created(2, second.digest, "pid-2", "starting")
    expire(pg_url, 2)  # the holder died holding line 2
    assert waiter.wait_hint() is None  # nothing held by anyone: claim now, or the run is over
    assert [(c.line_no, c.action, c.prediction_id) for c in waiter.claim(2, POLICY)] == [
        (2, "resume", "pid-2")
    ]
    assert waiter.claim(2, POLICY) == [] and waiter.wait_hint() is None
    holder.close(), waiter.close()


def test_the_moment_a_create_was_sent_is_kept_for_an_unknown_line(pg_url: str) -> None:
    journal = worker(pg_url, "w")
    journal.prepare(items(1))
    [claim] = journal.claim(1, POLICY)
    with psycopg.connect(pg_url) as conn:
        [(before,)] = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchall()
    journal.mark_creating(1, claim.digest, MODEL)
    [row] = journal.rows()
    assert row.state == "creating" and row.sent_at is not None and row.sent_at >= float(before)
    journal.close()


def test_a_final_state_commits_without_waiting_for_the_wal_flush_and_creating_and_the_id_wait(
    pg_url: str,
) -> None:
    with contextlib.closing(worker(pg_url, "w", source="sync.jsonl")) as journal:
        _check_commit_settings(journal)


def _check_commit_settings(journal: PostgresJournal) -> None:
    journal.prepare(items(3, "sync"))
    journal.claim(3, POLICY)
    digests = {item.line: item.digest for item in items(3, "sync")}
    settings: list[str] = []
    tx = journal._tx

    @contextlib.contextmanager
    def recording() -> Iterator[Any]:
        with tx() as cur:
            yield cur
            cur.execute("SHOW synchronous_commit")  # what this transaction commits with
            settings.append(cur.fetchone()[0])

    journal._tx = recording  # type: ignore[method-assign]

    def commits_with(write: Callable[..., None], line: int, *args: Any, **kwargs: Any) -> set[str]:
        settings.clear()
        write(line, digests[line], *args, **kwargs)
        return set(settings)

    assert commits_with(journal.mark_creating, 1, MODEL) == {"on"}  # before the create is sent
    assert commits_with(journal.mark_created, 1, "pid-1", "starting") == {"on"}  # the id
    assert commits_with(journal.mark_finished, 1, "succeeded", status="succeeded", outputs=["a"]) == {"off"}
    assert commits_with(journal.mark_creating, 2, MODEL) == {"on"}  # off was for that transaction only
    assert commits_with(journal.note, 2, error="slow") == {"off"}
    assert commits_with(journal.mark_created, 2, "pid-2", "starting") == {"on"}
    assert commits_with(journal.mark_finished, 2, "interrupted", status="canceled") == {"on"}  # the user's
    assert commits_with(journal.mark_creating, 3, MODEL) == {"on"}
    assert commits_with(journal.mark_not_created, 3, "refused") == {"on"}
    assert [(row.state, row.prediction_id, row.outputs) for row in journal.rows()] == [
        ("succeeded", "pid-1", ["a"]),
        ("interrupted", "pid-2", []),
        ("not_created", None, []),
    ]
