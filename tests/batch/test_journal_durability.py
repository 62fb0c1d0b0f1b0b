"""Which SQLite journal writes are fsynced before they return — those a re-run depends on — and which
only record how a prediction ended and ride on the next fsync."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from comet_replicate import SQLiteJournal

from .conftest import SCHNELL

_SET_SYNC = re.compile(r"PRAGMA\s+(?:main\s*\.\s*)?synchronous\s*=\s*['\"]?(\w+)", re.IGNORECASE)
_LEVELS = {"0": 0, "off": 0, "1": 1, "normal": 1, "2": 2, "full": 2, "3": 3, "extra": 3}
FULL, NORMAL = 2, 1


def _levels(journal: SQLiteJournal) -> list[tuple[str, int]]:
    """From now on, each statement the journal's connection runs (first word) with the synchronous
    level in effect when it runs. SQLite refuses to change the level inside a transaction, so the
    level a write alone runs at, or its group's BEGIN, is the one its commit is made with."""
    level = int(journal._db.execute("PRAGMA synchronous").fetchone()[0])
    seen: list[tuple[str, int]] = []

    def trace(statement: str) -> None:
        nonlocal level
        found = _SET_SYNC.search(statement)
        if found:
            level = _LEVELS[found.group(1).lower()]
        else:
            seen.append((statement.split()[0].upper(), level))

    journal._db.set_trace_callback(trace)
    return seen


def test_creating_and_the_id_are_fsynced_on_return_and_final_states_are_not(tmp_path: Path) -> None:
    with closing(SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl")) as journal:
        seen = _levels(journal)
        journal.mark_creating(1, "d1", SCHNELL)
        assert seen == [("INSERT", FULL)]  # before the create is sent: never pay twice
        journal.mark_created(1, "d1", "pid-1", "starting")
        assert seen[-1] == ("UPDATE", FULL)  # the id, the moment the create answers
        for state in ("succeeded", "failed", "canceled", "aborted"):
            seen.clear()
            journal.mark_finished(1, "d1", state, status=state, outputs=["a.webp"])
            assert seen == [("UPDATE", NORMAL)], state  # found again by id after a power cut
        seen.clear()
        journal.note(1, "d1", status="processing", error="slow")
        assert seen == [("UPDATE", NORMAL)]  # keeps the state: a re-run does the same without it
        seen.clear()
        journal.mark_creating(2, "d2", SCHNELL)  # right after a NORMAL write: FULL again
        journal.mark_not_created(2, "d2", "refused")  # else the line would read unknown
        journal.mark_creating(3, "d3", SCHNELL)
        journal.mark_created(3, "d3", "pid-3", "starting")
        journal.mark_finished(3, "d3", "interrupted", status="canceled")  # created again next run
        assert seen == [
            ("INSERT", FULL),
            ("UPDATE", FULL),
            ("INSERT", FULL),
            ("UPDATE", FULL),
            ("UPDATE", FULL),
        ]


def test_a_group_commits_fsynced_even_after_a_final_state_alone(tmp_path: Path) -> None:
    with closing(SQLiteJournal(tmp_path / "j.sqlite", "in.jsonl")) as journal:
        journal.mark_creating(1, "d1", SCHNELL)
        journal.mark_created(1, "d1", "pid-1", "starting")
        journal.mark_finished(1, "d1", "succeeded", status="succeeded")
        seen = _levels(journal)
        with journal.group():  # a group may hold a creating marker: the level is set before BEGIN
            journal.mark_finished(1, "d1", "succeeded", status="succeeded")
            journal.mark_creating(2, "d2", SCHNELL)
        assert seen == [("BEGIN", FULL), ("UPDATE", FULL), ("INSERT", FULL), ("COMMIT", FULL)]


_WRITES = textwrap.dedent(
    """
    import os, sys
    from comet_replicate import SQLiteJournal

    def step(name):  # a marker in the syscall trace
        os.write(2, f"step {name}\\n".encode())

    journal = SQLiteJournal(sys.argv[1], "in.jsonl")
    step("creating"); journal.mark_creating(1, "d1", "m")
    step("created"); journal.mark_created(1, "d1", "pid-1", "starting")
    step("finished"); journal.mark_finished(1, "d1", "succeeded", status="succeeded", outputs=["a"])
    step("note"); journal.note(1, "d1", status="succeeded")
    step("creating-next"); journal.mark_creating(2, "d2", "m")
    step("not-created"); journal.mark_not_created(2, "d2", "refused")
    step("group")
    with journal.group():  # a row that changes (one written as it was dirties no page)
        journal.mark_finished(1, "d1", "succeeded", status="succeeded", outputs=["b"])
    step("end")
    os._exit(0)
    """
)


def test_the_disk_sees_one_fsync_per_write_a_rerun_depends_on_and_none_for_final_states(
    tmp_path: Path,
) -> None:
    """Counted by the kernel (strace): what SQLite really does with the levels set above."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    log = tmp_path / "trace"
    traced = [sys.executable, "-c", _WRITES, str(tmp_path / "j.sqlite")]
    done = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=fsync,fdatasync,write", "-o", str(log), *traced],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "ptrace" in done.stderr.lower():
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    syncs: dict[str, int] = {}
    step = None
    for row in log.read_text().splitlines():
        marker = re.search(r'write\(2, "step ([a-z-]+)\\n"', row)
        if marker:
            step = marker.group(1)
            syncs[step] = 0
        elif step is not None and re.search(r"\b(fsync|fdatasync)\(", row):
            syncs[step] += 1
    assert syncs == {
        "creating": 1,
        "created": 1,
        "finished": 0,
        "note": 0,
        "creating-next": 1,  # its fsync makes the finished state and the note durable too
        "not-created": 1,
        "group": 1,
        "end": 0,
    }


_KILLED_AFTER_FINISHED = textwrap.dedent(
    """
    import os, signal, sys
    from comet_replicate import SQLiteJournal

    journal = SQLiteJournal(sys.argv[1], "in.jsonl")
    journal.mark_creating(1, "d1", "m")
    journal.mark_created(1, "d1", "pid-1", "starting")
    journal.mark_finished(1, "d1", "succeeded", status="succeeded", outputs=["a.webp"])
    journal.note(1, "d1", error="noted last")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_final_state_without_its_own_fsync_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_FINISHED, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert Path(f"{path}-wal").exists()  # killed: nothing closed or checkpointed the log
    with closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT state, prediction_id, outputs, error FROM lines").fetchone()
    assert row == ("succeeded", "pid-1", '["a.webp"]', "noted last")
