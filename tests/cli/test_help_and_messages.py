"""One CLI at 80 columns: Rich help for every command (the emulator's too), plain metavars, the
exit-codes footer everywhere, `models MODEL` without broken field names, and messages in plain
English (`cancel`, `record`, `contract-check`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main
from comet_replicate import Client
from comet_replicate._cli import build_app
from comet_replicate._cli._emulator import emulator_flags
from comet_replicate._cli._schema import known_models
from comet_replicate._cli._shared import cancel_outcome

from .conftest import SCHNELL, TOKEN, point_at

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = sorted(typer.main.get_command(build_app()).commands)  # type: ignore[attr-defined]
NARROW = {"COLUMNS": "80"}


def _command(name: str):  # type: ignore[no-untyped-def]
    return typer.main.get_command(build_app()).commands[name]  # type: ignore[attr-defined]


def _option_names(name: str) -> list[str]:
    return [opt for p in _command(name).params for opt in p.opts if opt.startswith("--")]


def test_every_command_is_covered() -> None:
    assert {"run", "get", "wait", "cancel", "batch", "models", "emulator", "contract-check", "record"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_fits_and_shows_every_option_name_whole(cli, command: str) -> None:
    result = cli(command, "--help", env=NARROW)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    for option in _option_names(command):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.stdout), (command, option)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_type_or_braced_metavar(cli, command: str) -> None:
    text = cli(command, "--help", env=NARROW).stdout
    leaks = re.findall(r"<(?:str|int|float|path|list|bool|int range|float range)[^>]*>|\{\w+\}", text)
    assert not leaks, (command, leaks)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage == usage.replace("{", "").replace("<", "")
    for param in _command(command).params:
        if param.param_type_name == "argument":
            assert (param.name or "").upper() in usage or (param.metavar or "") in usage


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_is_rich_and_ends_with_exit_codes(cli, command: str) -> None:
    text = cli(command, "--help", env=NARROW).stdout
    assert "╭─ Options" in text  # Rich panels, as every command shows them
    assert "Exit codes:" in text
    assert "usage:" not in text and "show this help message" not in text  # no argparse


@pytest.mark.parametrize("command", ["contract-check", "record"])
def test_contract_check_and_record_document_the_same_exit_codes(cli, command: str) -> None:
    text = " ".join(cli(command, "--help").stdout.split())
    for fragment in ("0 ok", "2 usage or input error", "3 API or connection error", "4 timeout", "130"):
        assert fragment in text


def test_emulator_command_mirrors_every_flag_of_the_emulators_own_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import comet_replicate_emulator

    assert comet_replicate_emulator.main(["--help"]) == 0
    emulator_flags_listed = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", capsys.readouterr().out))
    assert emulator_flags_listed - {"--help"} == set(_option_names("emulator")) - {"--help"}


def test_emulator_options_become_the_emulators_flags() -> None:
    assert emulator_flags(
        {"host": "0.0.0.0", "port": 0, "token": None, "accept_unknown_models": True, "speed": 2.5}
    ) == ["--host", "0.0.0.0", "--port", "0", "--accept-unknown-models", "--speed", "2.5"]
    assert emulator_flags({"validate_responses": False, "after_create_share": 0.0}) == [
        "--after-create-share",
        "0.0",
    ]


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--fail-rate", "1.5"], "--fail-rate"),
        (["--speed", "0"], "--speed"),
        (["--latency", "0.5-0.1"], "--latency"),
        (["--latency", "soon"], "--latency"),
        (["--fault-operations", "get,delete"], "--fault-operations"),
        (["--durations", "random"], "--durations"),
    ],
)
def test_emulator_bad_values_are_usage_errors_naming_the_option(cli, args: list[str], option: str) -> None:
    result = cli("emulator", *args, env=NARROW)
    assert result.exit_code == 2
    assert option in result.stderr and "usage:" not in result.stderr


def test_run_help_documents_both_wait_defaults_and_why(cli) -> None:
    text = " ".join(cli("run", "--help").stdout.split())
    assert "[default: 5]" in text
    assert "60 in the library" in text and "Ctrl-C" in text


def test_readme_documents_both_wait_defaults() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`--wait` defaults to 5" in readme and "`wait=60`" in readme


@pytest.mark.parametrize("model", sorted(known_models()))
def test_models_model_at_80_columns_breaks_no_field_name(cli, model: str) -> None:
    result = cli("models", model, env=NARROW)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    words = set(re.findall(r"[\w.-]+", result.stdout))
    for field in known_models()[model].fields:
        assert field.name in words, (model, field.name)


def test_models_model_at_80_columns_still_shows_types_defaults_and_ranges(cli) -> None:
    text = cli("models", "black-forest-labs/flux-schnell", env=NARROW).stdout
    assert "integer · default 1" in text and "range: 1 to 4" in text
    assert "one of: webp, jpg, png" in text and "string · required" in text


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("canceled", "Prediction p1 is canceled."),
        ("succeeded", "Prediction p1 had already succeeded; there was nothing to cancel."),
        ("failed", "Prediction p1 had already failed; there was nothing to cancel."),
        ("aborted", "Prediction p1 had been aborted; there was nothing to cancel."),
    ],
)
def test_cancel_outcome_reads_as_a_sentence(status: str, expected: str) -> None:
    assert cancel_outcome("p1", status) == expected


def test_cancel_outcome_of_a_prediction_still_running_says_the_cancel_was_requested() -> None:
    text = cancel_outcome("p1", "processing")
    assert text.startswith("Cancel requested for prediction p1; it is still processing")
    assert "comet-replicate get p1" in text


def test_cancel_of_a_finished_prediction_says_there_was_nothing_to_cancel(
    cli, serve_emulator, monkeypatch
) -> None:
    server = serve_emulator(speed=50)
    point_at(monkeypatch, server)
    with Client(TOKEN, base_url=server.cometapi_base_url) as client:
        prediction = client.predictions.create(SCHNELL, {"prompt": "a boat"}, wait=60)
    assert prediction.status.value == "succeeded"
    result = cli("cancel", prediction.id)
    assert result.exit_code == 0
    expected = f"Prediction {prediction.id} had already succeeded; there was nothing to cancel."
    assert result.stdout.strip() == expected


def test_cancel_of_a_running_prediction_says_it_is_canceled(cli, serve_emulator, monkeypatch) -> None:
    server = serve_emulator(speed=0.05)
    point_at(monkeypatch, server)
    with Client(TOKEN, base_url=server.cometapi_base_url) as client:
        prediction_id = client.predictions.create(SCHNELL, {"prompt": "a boat"}).id
    result = cli("cancel", prediction_id)
    assert result.stdout.strip() == f"Prediction {prediction_id} is canceled."


@pytest.mark.parametrize(("outputs", "noun"), [(1, "1 output)"), (2, "2 outputs)")])
def test_record_summary_counts_in_words(cli, emulator, tmp_path: Path, outputs: int, noun: str) -> None:
    out = tmp_path / "rec"
    result = cli("record", SCHNELL, "-p", "a boat", "-i", f"num_outputs={outputs}", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    written = len(list(out.glob("*.json")))
    recordings = "1 recording" if written == 1 else f"{written} recordings"
    assert summary == f"{recordings} written to {out} (one prediction, {noun}"
    assert "(s)" not in result.stdout


def test_contract_check_counts_in_words(cli, emulator) -> None:
    result = cli("contract-check", "--no-create", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    text = cli("contract-check", "--no-create").stdout
    count = len(report["exchanges"])
    assert f"ok: {count} response{'s' if count != 1 else ''} checked, no violation of openapi.yaml" in text
    assert "(s)" not in text
