"""The journal's durability settings and write order, and the Ctrl-C deferral around a create."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from comet_replicate._batch import SQLiteJournal as Journal
from comet_replicate._batch import input_hash
from comet_replicate._cli._interrupt import CreateGuard, create_guard

README = Path(__file__).resolve().parents[2] / "README.md"


def test_journal_is_wal_with_full_sync(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    with Journal(tmp_path / "j.sqlite", source) as journal:
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_each_step_is_committed_before_the_call_returns(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    digest = input_hash("a/b", {"prompt": "x"})
    other = None
    with Journal(tmp_path / "j.sqlite", source) as journal:
        other = sqlite3.connect(tmp_path / "j.sqlite")  # a second reader sees only committed data

        def seen() -> tuple[str, str | None]:
            row = other.execute("SELECT state, prediction_id FROM lines").fetchone()
            return row[0], row[1]

        journal.mark_creating(1, digest, "a/b")
        assert seen() == ("creating", None)
        journal.mark_created(1, digest, "pid-1", "starting")
        assert seen() == ("created", "pid-1")
        journal.mark_finished(1, digest, "succeeded", status="succeeded", outputs=["o.webp"])
        assert seen() == ("succeeded", "pid-1")
    other.close()


def test_input_hash_depends_on_model_and_input_not_key_order() -> None:
    assert input_hash("a/b", {"x": 1, "y": 2}) == input_hash("a/b", {"y": 2, "x": 1})
    assert input_hash("a/b", {"x": 1}) != input_hash("a/c", {"x": 1})
    assert input_hash("a/b", {"x": 1}) != input_hash("a/b", {"x": 2})


def test_first_ctrl_c_during_a_create_is_deferred_until_the_id_exists() -> None:
    with create_guard() as guard:
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, handled by the guard
        assert guard.pending
        with pytest.raises(KeyboardInterrupt):
            guard.created()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_ctrl_c_during_a_create_stops_at_once() -> None:
    guard = CreateGuard()
    guard.handler(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        guard.handler(signal.SIGINT, None)


def test_ctrl_c_after_the_create_is_immediate() -> None:
    guard = CreateGuard()
    guard.created()
    with pytest.raises(KeyboardInterrupt):
        guard.handler(signal.SIGINT, None)


def test_readme_documents_the_exit_codes_the_cli_uses() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    for fragment in (
        "`0` ok",
        "`1` a prediction failed, was canceled or aborted",
        "`2` usage or input error",
        "`3` API or connection error",
        "`4` timeout",
        "`130` interrupted",
    ):
        assert fragment in text
