"""A batch killed with SIGKILL, or stopped with Ctrl-C, resumes without creating any line twice.

The emulator runs as a real server in this test process, so its counters outlive the killed CLI.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from comet_replicate._cli._errors import ExitCode

from .conftest import SCHNELL, TOKEN, cli_command, cli_env, requests_of, run_process
from .test_batch import write_lines
from .test_run import _wait_for

LINES = 6


def first_creates_take(seconds: float, count: int):
    """Emulator durations: the first `count` predictions run `seconds`, later ones are quick.

    This pins the moments the tests act in (the first wave is still running) without slowing
    down what comes after.
    """
    created = 0

    def duration(model: str, value: object) -> tuple[float, float]:
        nonlocal created
        created += 1
        return (0.05, seconds) if created <= count else (0.05, 0.2)

    return duration


def _states(journal: Path) -> list[tuple[int, str, str | None]]:
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return db.execute("SELECT line_no, state, prediction_id FROM lines ORDER BY line_no").fetchall()
    except sqlite3.OperationalError:
        return []  # the schema is not there yet
    finally:
        db.close()


def _prompt_of(server, prediction_id: str) -> str:
    response = httpx.get(
        f"{server.cometapi_base_url}/predictions/{prediction_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return str(response.json()["input"]["prompt"])


def _first_wave_committed(states: list[tuple[int, str, str | None]]) -> bool:
    created = sum(1 for _, state, _ in states if state == "created")
    return created >= 3 and all(state != "creating" for _, state, _ in states)


def test_sigkill_mid_batch_then_rerun_creates_every_line_exactly_once(serve_emulator, tmp_path: Path) -> None:
    # The first wave runs 2 s: once its ids are committed no create is in flight until one ends.
    # Creates are not held, so each id is journaled as its create answers (a kill during a held
    # create is tests/batch/test_crash.py's); held, the lines would go from creating to succeeded.
    server = serve_emulator(speed=1.0, duration_fn=first_creates_take(2.0, 3))
    source = write_lines(tmp_path / "in.jsonl", LINES)
    journal = tmp_path / "in.jsonl.journal.sqlite"
    args = ("batch", str(source), "-m", SCHNELL, "--concurrency", "3", "--out", str(tmp_path / "out"))
    args += ("--hold-creates", "off")
    process = subprocess.Popen(
        cli_command(*args), env=cli_env(server), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        # Kill once the first wave's ids are committed and no create is in flight.
        _wait_for(lambda: _first_wave_committed(_states(journal)))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL
    before = _states(journal)
    unfinished = [line for line, state, _ in before if state == "created"]
    assert len(unfinished) >= 3 and all(state in ("created", "succeeded") for _, state, _ in before)
    assert requests_of(server, "create") == len(before)

    rerun = run_process(*args, server=server)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(unfinished)} to resume by id" in " ".join(rerun.stderr.split())

    after = _states(journal)
    assert [state for _, state, _ in after] == ["succeeded"] * LINES
    stats = server.stats()
    assert stats["predictions_created"] == LINES
    assert requests_of(server, "create") == LINES  # no create was ever sent twice
    ids = [prediction_id for _, _, prediction_id in after]
    assert sorted(ids) == sorted(stats["prediction_ids"]) and len(set(ids)) == LINES
    assert {line: pid for line, _, pid in before} == {line: pid for line, _, pid in after[: len(before)]}
    for line_no, _, prediction_id in after:  # each line's prediction is that line's input
        assert _prompt_of(server, str(prediction_id)) == f"boat {line_no}"
    assert len(list((tmp_path / "out").iterdir())) == LINES


@pytest.mark.parametrize("hold", ["off", "auto"])  # auto: Ctrl-C lands while both creates are held open
def test_ctrl_c_cancels_running_lines_prints_ids_and_a_rerun_finishes(
    serve_emulator, tmp_path: Path, hold: str
) -> None:
    server = serve_emulator(speed=1.0, duration_fn=first_creates_take(60.0, 2))
    source = write_lines(tmp_path / "in.jsonl", 4)
    journal = tmp_path / "in.jsonl.journal.sqlite"
    args = ("batch", str(source), "-m", SCHNELL, "--concurrency", "2", "--out", str(tmp_path / "out"))
    process = subprocess.Popen(
        cli_command(*args, "--hold-creates", hold),
        env=cli_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if hold == "off":
            _wait_for(lambda: sum(1 for _, state, _ in _states(journal) if state == "created") == 2)
        else:
            _wait_for(lambda: len(server.stats()["prediction_ids"]) == 2)
            assert [state for _, state, _ in _states(journal)] == ["creating"] * 2
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED
    interrupted = [(line, pid) for line, state, pid in _states(journal) if state == "interrupted"]
    assert len(interrupted) == 2
    for _, prediction_id in interrupted:
        assert prediction_id in err
    assert requests_of(server, "cancel") == 2
    assert "Traceback" not in err

    rerun = run_process(*args, server=server)
    assert rerun.returncode == 0, rerun.stderr
    assert [state for _, state, _ in _states(journal)] == ["succeeded"] * 4
    assert requests_of(server, "create") == 6  # 4 lines + the 2 canceled ones created again
    db = sqlite3.connect(journal)
    previous = dict(db.execute("SELECT line_no, previous_ids FROM lines").fetchall())
    db.close()
    for line, prediction_id in interrupted:
        assert json.loads(previous[line]) == [prediction_id]


def test_sigterm_stops_a_batch_like_ctrl_c_and_exits_143(serve_emulator, tmp_path: Path) -> None:
    # How schedulers (Kubernetes, Slurm) stop a job: running predictions canceled, ids printed.
    server = serve_emulator(speed=1.0, duration_fn=first_creates_take(60.0, 2))
    source = write_lines(tmp_path / "in.jsonl", 3)
    journal = tmp_path / "in.jsonl.journal.sqlite"
    args = ("batch", str(source), "-m", SCHNELL, "--concurrency", "2", "--out", str(tmp_path / "out"))
    process = subprocess.Popen(
        cli_command(*args, "--hold-creates", "off"),
        env=cli_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: sum(1 for _, state, _ in _states(journal) if state == "created") == 2)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err[-800:]
    interrupted = [pid for _, state, pid in _states(journal) if state == "interrupted"]
    assert len(interrupted) == 2 and all(pid in err for pid in interrupted)
    assert "SIGTERM" in err and "Traceback" not in err
    assert requests_of(server, "cancel") == 2 and requests_of(server, "create") == 2
