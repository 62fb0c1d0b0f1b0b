"""``batch-status``: per-worker and total counts from the journal alone, PostgreSQL and SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from comet_replicate._batch import BatchItem, LineState, RetryPolicy, SQLiteJournal, open_journal
from comet_replicate._batch.postgres import SCHEMA
from comet_replicate._batch.status import batch_status, classify
from comet_replicate._cli import main

MODEL = "black-forest-labs/flux-schnell"
ITEMS = [BatchItem(n, MODEL, {"prompt": f"s {n}"}) for n in range(1, 9)]
POLICY = RetryPolicy()


def status_json(capsys: pytest.CaptureFixture[str], journal: str) -> dict[str, object]:
    assert main(["batch-status", "--journal", journal, "--json"]) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


@pytest.mark.parametrize(
    ("state", "live", "category"),
    [
        ("succeeded", False, "done"),
        ("failed", True, "failed"),
        ("not_created", False, "failed"),
        ("creating", True, "running"),
        ("created", True, "running"),
        ("creating", False, "unknown"),
        ("created", False, "pending"),
        ("pending", False, "pending"),
        ("interrupted", False, "pending"),
    ],
)
def test_each_state_counts_in_one_category(state: str, live: bool, category: str) -> None:
    assert classify(state, live) == category


def test_postgres_status_per_worker_and_total(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = open_journal(pg_url, source="prompts.jsonl", worker_id="host-a:1")
    b = open_journal(pg_url, source="prompts.jsonl", worker_id="host-b:2")
    a.prepare(ITEMS)
    b.prepare(ITEMS)
    c1, c2, c3 = a.claim(3, POLICY)
    for claim in (c1, c2, c3):
        a.mark_creating(claim.line_no, claim.digest, MODEL)
    a.mark_created(c1.line_no, c1.digest, "p1", "starting")
    a.mark_finished(c1.line_no, c1.digest, LineState.SUCCEEDED, status="succeeded")
    a.mark_created(c2.line_no, c2.digest, "p2", "starting")
    a.mark_finished(c2.line_no, c2.digest, LineState.FAILED, status="failed", error="nsfw")
    # c3: creating, held by a live worker -> running
    d1, d2 = b.claim(2, POLICY)
    b.mark_creating(d1.line_no, d1.digest, MODEL)  # b dies here: creating -> unknown
    b.mark_creating(d2.line_no, d2.digest, MODEL)
    b.mark_created(d2.line_no, d2.digest, "p5", "processing")  # ... and here: created -> pending (resumable)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {SCHEMA}.lines SET lease_until = now() - interval '1 s' WHERE worker = 'host-b:2'"
        )

    document = status_json(capsys, pg_url)
    [batch] = document["batches"]  # type: ignore[index]
    assert batch["batch"] == "prompts.jsonl"
    workers = {w["worker"]: w for w in batch["workers"]}
    assert {k: workers["host-a:1"][k] for k in ("done", "running", "failed", "unknown", "pending")} == {
        "done": 1, "running": 1, "failed": 1, "unknown": 0, "pending": 0,
    }  # fmt: skip
    assert (workers["host-b:2"]["unknown"], workers["host-b:2"]["pending"]) == (1, 1)
    assert workers[None]["pending"] == 3  # never claimed
    assert batch["total"] == {"done": 1, "running": 1, "failed": 1, "unknown": 1, "pending": 4, "total": 8}
    assert workers["host-a:1"]["last_seen"]

    # The text view names every worker and the totals; the password never shows.
    assert main(["batch-status", "--journal", pg_url]) == 0
    text = capsys.readouterr().out
    assert "host-a:1" in text and "host-b:2" in text and "all workers" in text
    a.close(), b.close()


def test_postgres_status_of_an_empty_database_says_so(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["batch-status", "--journal", pg_url]) == 3
    assert "holds no comet-replicate journal yet" in capsys.readouterr().err


def test_sqlite_status_without_and_with_a_running_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.sqlite"
    journal = SQLiteJournal(path, tmp_path / "prompts.jsonl", worker_id="laptop:9")
    journal.prepare(ITEMS[:3])
    c1, c2, _ = journal.claim(3, POLICY)
    journal.mark_creating(c1.line_no, c1.digest, MODEL)
    journal.mark_created(c1.line_no, c1.digest, "p1", "starting")
    journal.mark_finished(c1.line_no, c1.digest, LineState.SUCCEEDED, status="succeeded")
    journal.mark_creating(c2.line_no, c2.digest, MODEL)
    [running] = batch_status(path)  # the journal is open: a batch holds it
    assert (running.total.done, running.total.running) == (1, 1)
    journal.close()
    document = status_json(capsys, str(path))
    [batch] = document["batches"]  # type: ignore[index]
    assert batch["total"] == {"done": 1, "running": 0, "failed": 0, "unknown": 1, "pending": 0, "total": 2}
    assert [w["worker"] for w in batch["workers"]] == ["laptop:9"]


def test_a_missing_journal_is_one_line_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch-status", "--journal", str(tmp_path / "nope.sqlite")]) == 3
    assert capsys.readouterr().err.strip().endswith("nope.sqlite does not exist")
