"""`batch`: bounded concurrency, a journal that never lets a line be paid twice, summaries, exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from comet_replicate import APIConnectionError, APIStatusError, Client
from comet_replicate._batch import SQLiteJournal as Journal
from comet_replicate._batch import input_hash
from comet_replicate._cli._batch import read_jsonl
from comet_replicate._cli._errors import CliUsageError, ExitCode
from comet_replicate._cli._shared import definitely_not_created
from comet_replicate_emulator import Faults
from PIL import Image

from .conftest import SCHNELL, TOKEN, point_at, requests_of


def write_lines(path: Path, count: int, prefix: str = "boat") -> Path:
    path.write_text("".join(json.dumps({"prompt": f"{prefix} {i}"}) + "\n" for i in range(1, count + 1)))
    return path


def journal_rows(path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute("SELECT * FROM lines ORDER BY line_no")]
    finally:
        db.close()


def test_batch_runs_every_line_once_and_saves_each_output(cli, emulator, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    result = cli("batch", str(source), "--model", SCHNELL, "--concurrency", "2", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "5/5 lines succeeded" in result.stdout
    rows = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert [row["state"] for row in rows] == ["succeeded"] * 5
    assert sorted(row["prediction_id"] for row in rows) == sorted(emulator.stats()["prediction_ids"])
    assert requests_of(emulator, "create") == 5
    files = sorted(out.iterdir())
    assert len(files) == 5 and files[0].name.startswith("line00001-")
    for file in files:
        with Image.open(file) as image:
            image.load()


def test_rerunning_a_finished_batch_creates_nothing(cli, emulator, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    assert cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o")).exit_code == 0
    again = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert again.exit_code == 0
    assert "3 already done" in again.stdout
    assert requests_of(emulator, "create") == 3


def test_a_changed_line_is_new_work_and_unchanged_lines_are_skipped(cli, emulator, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    assert cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o")).exit_code == 0
    lines = source.read_text().splitlines()
    lines[1] = json.dumps({"prompt": "a different boat"})
    source.write_text("\n".join(lines) + "\n")
    assert cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o")).exit_code == 0
    assert requests_of(emulator, "create") == 4


def test_batch_json_reports_every_line(cli, emulator, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 2)
    result = cli("batch", str(source), "-m", SCHNELL, "--json", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert [line["line"] for line in document["lines"]] == [1, 2]
    assert all(
        line["state"] == "succeeded" and Path(line["outputs"][0]).is_file() for line in document["lines"]
    )


def test_invalid_json_line_exits_2_naming_it_before_any_request(cli, emulator, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "ok"}\n\n{"prompt": broken}\n')
    result = cli("batch", str(source), "-m", SCHNELL)
    assert result.exit_code == ExitCode.USAGE
    assert "line 3" in result.stderr
    assert emulator.stats()["requests_total"] == 0


def test_schema_invalid_line_refuses_the_whole_batch_before_any_request(
    cli, emulator, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"prompt": "ok"}\n{"prompt": "x", "num_outputs": 9}\n{"prompt": "y", "output_format": "gif"}\n'
    )
    result = cli("batch", str(source), "-m", SCHNELL)
    assert result.exit_code == ExitCode.USAGE
    assert "line 2" in result.stderr and "num_outputs" in result.stderr
    assert "line 3" in result.stderr and "output_format" in result.stderr
    assert emulator.stats()["requests_total"] == 0


def test_read_jsonl_accepts_input_wrappers_and_skips_blank_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"input": {"prompt": "a"}}\n\n  \n{"prompt": "b"}\n')
    assert read_jsonl(source) == [(1, {"prompt": "a"}), (4, {"prompt": "b"})]
    source.write_text("\n")
    with pytest.raises(CliUsageError, match="no input lines"):
        read_jsonl(source)


def test_failed_lines_exit_1_are_listed_with_ids_and_not_recreated(
    cli, serve_emulator, monkeypatch, tmp_path
) -> None:
    server = serve_emulator(faults=Faults(failed=1.0, failed_message="NSFW content detected."))
    point_at(monkeypatch, server)
    source = write_lines(tmp_path / "in.jsonl", 2)
    result = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert result.exit_code == ExitCode.PREDICTION
    assert "Lines that did not succeed" in result.stdout
    for prediction_id in server.stats()["prediction_ids"]:
        assert prediction_id in result.stdout
    again = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert again.exit_code == ExitCode.PREDICTION
    assert requests_of(server, "create") == 2
    retried = cli("batch", str(source), "-m", SCHNELL, "--retry-failed", "--out", str(tmp_path / "o"))
    assert retried.exit_code == ExitCode.PREDICTION
    assert requests_of(server, "create") == 4
    rows = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert all(len(json.loads(row["previous_ids"])) == 1 and row["creates"] == 2 for row in rows)


def _seed(source: Path, line_no: int, state: str, prediction_id: str | None = None) -> None:
    """Write a journal row as a crashed earlier run would have left it."""
    value = read_jsonl(source)[line_no - 1][1]
    digest = input_hash(SCHNELL, value)
    with Journal(source.with_name(source.name + ".journal.sqlite"), source) as journal:
        journal.mark_creating(line_no, digest, SCHNELL)
        if state == "created":
            assert prediction_id is not None
            journal.mark_created(line_no, digest, prediction_id, "starting")


def test_a_line_whose_create_never_answered_is_reported_unknown_and_not_recreated(
    cli, emulator, tmp_path
) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    _seed(source, 2, "creating")
    result = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert result.exit_code == ExitCode.API
    assert "unknown" in result.stdout and "may have been created" in result.stdout
    assert "--retry-unknown" in result.stdout
    assert requests_of(emulator, "create") == 2  # lines 1 and 3 only
    again = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert again.exit_code == ExitCode.API and requests_of(emulator, "create") == 2
    retried = cli("batch", str(source), "-m", SCHNELL, "--retry-unknown", "--out", str(tmp_path / "o"))
    assert retried.exit_code == 0
    assert requests_of(emulator, "create") == 3


def test_a_created_but_unfinished_line_is_resumed_by_id_not_recreated(cli, emulator, tmp_path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    with Client(TOKEN, base_url=emulator.cometapi_base_url) as client:
        existing = client.predictions.create(SCHNELL, {"prompt": "boat 2"}).id
    _seed(source, 2, "created", existing)
    result = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 to resume by id" in " ".join(result.stderr.split())
    assert requests_of(emulator, "create") == 3  # the seeded one plus lines 1 and 3
    rows = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert rows[1]["prediction_id"] == existing and rows[1]["state"] == "succeeded"


def test_unreachable_api_exits_3_and_the_lines_are_created_on_the_next_run(cli, emulator, tmp_path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 2)
    down = cli("batch", str(source), "-m", SCHNELL, "--base-url", "http://127.0.0.1:9/replicate/v1")
    assert down.exit_code == ExitCode.API
    assert [row["state"] for row in journal_rows(tmp_path / "in.jsonl.journal.sqlite")] == ["not_created"] * 2
    up = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert up.exit_code == 0
    assert requests_of(emulator, "create") == 2


def test_deadline_exits_4_and_keeps_the_id_for_the_next_run(
    cli, serve_emulator, monkeypatch, tmp_path
) -> None:
    server = serve_emulator(speed=0.05)
    point_at(monkeypatch, server)
    source = write_lines(tmp_path / "in.jsonl", 1)
    result = cli("batch", str(source), "-m", SCHNELL, "--timeout", "0.5")
    assert result.exit_code == ExitCode.TIMEOUT
    [row] = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert row["state"] == "created" and row["prediction_id"] == server.stats()["prediction_ids"][0]


def test_a_journal_in_use_by_another_batch_is_refused(cli, emulator, tmp_path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 1)
    with Journal(tmp_path / "in.jsonl.journal.sqlite", source):
        result = cli("batch", str(source), "-m", SCHNELL)
    assert result.exit_code == ExitCode.USAGE
    assert "in use" in result.stderr
    assert emulator.stats()["requests_total"] == 0


def _status_error(status: int) -> APIStatusError:
    return APIStatusError("x", status=status)


def _connection_error(cause: BaseException) -> APIConnectionError:
    try:
        raise APIConnectionError("x") from cause
    except APIConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "sure"),
    [
        (_status_error(400), True),
        (_status_error(429), True),
        (_status_error(500), False),
        (_status_error(502), False),
        (_connection_error(httpx.ConnectError("refused")), True),
        (_connection_error(httpx.ReadError("reset")), False),
        (_connection_error(httpx.ReadTimeout("slow")), False),
    ],
)
def test_only_a_refused_or_unsent_create_counts_as_not_created(error: Exception, sure: bool) -> None:
    assert definitely_not_created(error) is sure


def test_lines_moved_by_an_edit_above_them_are_not_created_again(cli, emulator, tmp_path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    assert cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o")).exit_code == 0
    source.write_text(json.dumps({"prompt": "a new first line"}) + "\n" + source.read_text())
    again = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert again.exit_code == 0
    assert requests_of(emulator, "create") == 4  # only the new line
    rows = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert [row["line_no"] for row in rows] == [1, 2, 3, 4]
    assert all(row["state"] == "succeeded" for row in rows)


def test_moving_the_folder_keeps_the_journal_valid(cli, emulator, tmp_path) -> None:
    first = tmp_path / "a"
    first.mkdir()
    source = write_lines(first / "in.jsonl", 2)
    assert cli("batch", str(source), "-m", SCHNELL, "--out", str(first / "o")).exit_code == 0
    moved = first.rename(tmp_path / "b")
    again = cli("batch", str(moved / "in.jsonl"), "-m", SCHNELL, "--out", str(moved / "o"))
    assert again.exit_code == 0 and "2 already done" in again.stdout
    assert requests_of(emulator, "create") == 2


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_a_create_lost_after_it_took_effect_is_unknown_and_never_sent_again(
    cli, serve_emulator, monkeypatch, tmp_path, kind: str
) -> None:
    # The emulator creates the prediction, then drops the connection or cuts the body short: the
    # paid-but-lost case. The client cannot know the id, so the line must not be created again.
    faults = Faults(operations=frozenset({"create"}), after_create=1.0, **{kind: 1.0})
    server = serve_emulator(faults=faults)
    point_at(monkeypatch, server)
    source = write_lines(tmp_path / "in.jsonl", 1)
    first = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert first.exit_code == ExitCode.API
    assert "may have been created" in first.stdout
    assert server.stats()["predictions_created"] == 1
    again = cli("batch", str(source), "-m", SCHNELL, "--out", str(tmp_path / "o"))
    assert again.exit_code == ExitCode.API and "unknown" in again.stdout
    assert requests_of(server, "create") == 1
    [row] = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert row["state"] == "creating" and row["prediction_id"] is None and row["creates"] == 1


def test_run_warns_when_a_lost_create_may_have_made_a_prediction(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(faults=Faults(operations=frozenset({"create"}), after_create=1.0, drop=1.0))
    point_at(monkeypatch, server)
    result = cli("run", SCHNELL, "--prompt", "a boat")
    assert result.exit_code == ExitCode.API
    assert "a prediction may exist" in result.stderr
    assert requests_of(server, "create") == 1  # the lost create was not retried


def test_a_rejected_key_stops_the_batch_instead_of_trying_every_line(
    cli, emulator, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("COMETAPI_KEY", "sk-wrong-key-000000")
    source = write_lines(tmp_path / "in.jsonl", 5)
    result = cli("batch", str(source), "-m", SCHNELL, "--concurrency", "1")
    assert result.exit_code == ExitCode.API
    assert (
        "stopped early" in result.stderr
        and "401" in result.stderr
        and "4 line(s) not started" in result.stderr
    )
    assert requests_of(emulator, "create") == 1
    assert "sk-wrong-key-000000" not in result.stdout + result.stderr
    document = cli("batch", str(source), "-m", SCHNELL, "--concurrency", "1", "--json")
    states = [line["state"] for line in json.loads(document.stdout)["lines"]]
    assert states == ["not_created", "pending", "pending", "pending", "pending"]


def test_retry_unknown_line_creates_only_the_lines_named(cli, emulator, tmp_path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    _seed(source, 1, "creating")
    _seed(source, 3, "creating")
    result = cli(
        "batch", str(source), "-m", SCHNELL, "--retry-unknown-line", "3", "--out", str(tmp_path / "o")
    )
    assert result.exit_code == ExitCode.API  # line 1 is still unknown
    rows = journal_rows(tmp_path / "in.jsonl.journal.sqlite")
    assert [row["state"] for row in rows] == ["creating", "succeeded", "succeeded"]
    assert requests_of(emulator, "create") == 2
