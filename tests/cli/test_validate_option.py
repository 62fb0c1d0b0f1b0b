"""`--validate strict|warn|off` (run, batch): the library's input_validation modes on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from comet_replicate._cli._errors import ExitCode

from .conftest import SCHNELL, requests_of, run_process

TYPO = ["-i", "aspect_ration=16:9"]


def test_strict_refuses_an_unknown_field_naming_the_closest_one_before_any_request(cli, emulator) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", *TYPO, "--validate", "strict")
    assert result.exit_code == ExitCode.USAGE
    assert "aspect_ration" in result.stderr and "aspect_ratio" in result.stderr
    assert "--validate off" in result.stderr or "input_validation" in result.stderr  # the way around
    assert emulator.stats()["requests_total"] == 0


def test_warn_is_the_default_and_sends_an_unknown_field_with_a_hint(emulator, tmp_path: Path) -> None:
    result = run_process("run", SCHNELL, "--prompt", "a boat", *TYPO, "--out", str(tmp_path), server=emulator)
    assert result.returncode == ExitCode.OK, result.stderr
    assert "did you mean 'aspect_ratio'" in result.stderr
    assert requests_of(emulator, "create") == 1


def test_off_sends_a_value_the_schema_refuses_and_the_server_judges_it(cli, emulator) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", "-i", "num_outputs=9", "--validate", "off")
    assert requests_of(emulator, "create") == 1  # sent: the emulator, not the client, refused it
    assert result.exit_code == ExitCode.API
    assert "num_outputs" in result.stderr


def test_an_unknown_mode_is_a_usage_error_naming_the_choices(cli, emulator) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", "--validate", "lenient")
    assert result.exit_code == ExitCode.USAGE
    assert "strict" in result.stderr and "off" in result.stderr
    assert emulator.stats()["requests_total"] == 0


def test_batch_strict_refuses_the_file_before_any_request(cli, emulator, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"prompt": "one"}) + "\n" + json.dumps({"prompt": "two", "aspect_ration": "16:9"}) + "\n"
    )
    result = cli("batch", str(source), "--model", SCHNELL, "--out", str(tmp_path), "--validate", "strict")
    assert result.exit_code == ExitCode.USAGE
    assert "line 2" in result.stderr and "aspect_ratio" in result.stderr
    assert emulator.stats()["requests_total"] == 0
