"""`batch`: bad input files exit 2 with one line, `--emulator` like `run --emulator`, `--shard K/N`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from comet_replicate._cli._errors import ExitCode

from .conftest import SCHNELL, requests_of
from .test_batch import journal_rows, write_lines


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"prompt": "ok"}\n' + bytes(range(128, 256)) + os.urandom(2048), "line 2 is not UTF-8 text"),
        (b'{"prompt": "ok"}\n' + b"[" * 100_000 + b"\n", "line 2 nests arrays/objects 100000 deep"),
        (b'{"prompt": "ok"}\n{"prompt": }\n', "line 2 is not valid JSON"),
    ],
)
def test_a_bad_input_file_exits_2_with_one_line_naming_file_and_line(
    cli, emulator, tmp_path: Path, content: bytes, fragment: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    result = cli("batch", str(source), "-m", SCHNELL)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(f"error: {source} {fragment}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert emulator.stats()["requests_total"] == 0


def test_batch_with_the_embedded_emulator_needs_no_key(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COMETAPI_KEY", raising=False)
    monkeypatch.delenv("COMETAPI_BASE_URL", raising=False)
    source = write_lines(tmp_path / "in.jsonl", 2)
    result = cli("batch", str(source), "-m", SCHNELL, "--emulator", "--json", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [line["state"] for line in document["lines"]] == ["succeeded", "succeeded"]
    assert len(list((tmp_path / "o").iterdir())) == 2


def test_emulator_and_base_url_exclude_each_other(cli, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 1)
    result = cli("batch", str(source), "-m", SCHNELL, "--emulator", "--base-url", "http://127.0.0.1:9")
    assert result.exit_code == ExitCode.USAGE and "exclude" in result.stderr


def test_shards_split_the_lines_and_each_keeps_its_own_journal(cli, emulator, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", 12)
    out = tmp_path / "o"
    lines_per_shard = []
    for k in (1, 2, 3):
        result = cli("batch", str(source), "-m", SCHNELL, "--shard", f"{k}/3", "--json", "--out", str(out))
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["journal"].endswith(f"in.jsonl.shard-{k}-of-3.journal.sqlite")
        lines_per_shard.append({line["line"] for line in document["lines"]})
        assert all(line["state"] == "succeeded" for line in document["lines"])
    assert set().union(*lines_per_shard) == set(range(1, 13))
    assert sum(len(lines) for lines in lines_per_shard) == 12
    assert requests_of(emulator, "create") == 12 and len(list(out.iterdir())) == 12
    again = cli("batch", str(source), "-m", SCHNELL, "--shard", "2/3", "--out", str(out))
    assert again.exit_code == 0 and requests_of(emulator, "create") == 12
    rows = journal_rows(tmp_path / "in.jsonl.shard-2-of-3.journal.sqlite")
    assert {row["line_no"] for row in rows} == lines_per_shard[1]


def test_a_journal_of_another_shard_or_a_bad_shard_is_refused_before_any_request(
    cli, emulator, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "in.jsonl", 3)
    journal, out = str(tmp_path / "j.sqlite"), str(tmp_path / "o")
    first = cli("batch", str(source), "-m", SCHNELL, "--shard", "1/2", "--journal", journal, "--out", out)
    assert first.exit_code == 0
    created = requests_of(emulator, "create")
    other = cli("batch", str(source), "-m", SCHNELL, "--shard", "2/2", "--journal", journal)
    assert other.exit_code == ExitCode.USAGE and "belongs to shard 1/2" in other.stderr
    for bad in ("3/2", "0/2", "2", "x/y"):
        result = cli("batch", str(source), "-m", SCHNELL, "--shard", bad)
        assert result.exit_code == ExitCode.USAGE and "K/N" in result.stderr, (bad, result.stderr)
    assert requests_of(emulator, "create") == created
