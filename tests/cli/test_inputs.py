"""`-i key=value` is typed by the model's schema; bad input exits 2 naming the field, before any request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comet_replicate._cli._errors import CliUsageError, ExitCode
from comet_replicate._cli._inputs import build_input, coerce_value, parse_assignment
from comet_replicate._cli._schema import model_info

from .conftest import SCHNELL, requests_of


def _field(model: str, name: str):
    info = model_info(model)
    assert info is not None
    field = info.field(name)
    assert field is not None
    return field


@pytest.mark.parametrize(
    ("model", "name", "text", "expected"),
    [
        (SCHNELL, "num_outputs", "3", 3),
        (SCHNELL, "go_fast", "false", False),
        (SCHNELL, "go_fast", "yes", True),
        (SCHNELL, "megapixels", "1", "1"),  # a string enum that looks like a number stays a string
        (SCHNELL, "prompt", "42", "42"),
        ("black-forest-labs/flux-dev", "guidance", "3.5", 3.5),
        ("black-forest-labs/flux-dev", "guidance", "4", 4),
        ("black-forest-labs/flux-2-pro", "width", "null", None),
        ("black-forest-labs/flux-2-pro", "width", "512", 512),
        ("black-forest-labs/flux-2-pro", "input_images", '["https://a/b.png"]', ["https://a/b.png"]),
        ("black-forest-labs/flux-kontext-pro", "seed", "7", 7),
    ],
)
def test_values_are_typed_by_the_schema(model: str, name: str, text: str, expected: object) -> None:
    value = coerce_value(text, _field(model, name))
    assert value == expected and type(value) is type(expected)


def test_text_that_fits_no_type_is_passed_on_for_the_validator_to_name() -> None:
    assert coerce_value("many", _field(SCHNELL, "num_outputs")) == "many"


def test_fields_of_models_outside_the_spec_are_read_as_json_or_text() -> None:
    value = build_input("someone/other", assignments=["steps=5", "name=boat", "tags=[1,2]"])
    assert value == {"steps": 5, "name": "boat", "tags": [1, 2]}


def test_input_file_then_prompt_then_each_i_in_order(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"input": {"prompt": "file", "seed": 1, "num_outputs": 2}}))
    value = build_input(SCHNELL, prompt="flag", assignments=["seed=9", "seed=10"], input_file=path)
    assert value == {"prompt": "flag", "seed": 10, "num_outputs": 2}


@pytest.mark.parametrize("text", ["noequals", "=value", ""])
def test_assignment_without_key_is_refused(text: str) -> None:
    with pytest.raises(CliUsageError, match="key=value"):
        parse_assignment(text)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["-i", "num_outputs=9"], ["num_outputs", "1 to 4"]),
        (["-i", "aspect_ratio=7:3"], ["aspect_ratio", "'16:9'"]),
        (["-i", "num_outputs=many"], ["num_outputs", "integer"]),
    ],
)
def test_bad_input_exits_2_naming_the_field_before_any_request(cli, emulator, args, names) -> None:
    result = cli("run", SCHNELL, "--prompt", "a boat", *args)
    assert result.exit_code == ExitCode.USAGE
    for name in names:
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert emulator.stats()["requests_total"] == 0


def test_missing_required_prompt_exits_2_before_any_request(cli, emulator) -> None:
    result = cli("run", SCHNELL, "-i", "seed=1")
    assert result.exit_code == ExitCode.USAGE
    assert "prompt" in result.stderr
    assert emulator.stats()["requests_total"] == 0


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_unreadable_input_file_exits_2(cli, emulator, tmp_path: Path, content: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(content)
    result = cli("run", SCHNELL, "--input-file", str(path))
    assert result.exit_code == ExitCode.USAGE
    assert str(path) in result.stderr
    assert requests_of(emulator, "create") == 0


def test_malformed_model_reference_exits_2(cli, emulator) -> None:
    result = cli("run", "flux-schnell", "--prompt", "a boat")
    assert result.exit_code == ExitCode.USAGE
    assert "owner/name" in result.stderr
