"""Which validator decides, how deep an input may nest, and what a value JSON cannot carry says."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import InputValidationError, _inputs
from comet_replicate._inputs import prepare_input, validate_input

SCHNELL = "black-forest-labs/flux-schnell"
DEV = "black-forest-labs/flux-dev"
UNKNOWN = "someone/some-model"


def _refusal(model: str, data: dict[str, Any], **kw: Any) -> InputValidationError:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(model, data, **kw)
    return caught.value


# ------------------------------------------------------------------------ the compiled check and jsonschema


def test_a_valid_input_is_accepted_by_the_compiled_check_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_jsonschema(model: str) -> Any:
        raise AssertionError("jsonschema was consulted for a valid input")

    monkeypatch.setattr(_inputs, "input_validator", no_jsonschema)
    validate_input(SCHNELL, {"prompt": "a boat", "num_outputs": 2, "aspect_ratio": "16:9"})


def test_an_invalid_input_is_worded_by_jsonschema() -> None:
    with pytest.raises(InputValidationError) as caught:
        validate_input(SCHNELL, {"prompt": "a boat", "num_outputs": 7})
    assert caught.value.field == "num_outputs"


@pytest.mark.parametrize("error", [ValueError, TypeError, OverflowError])
def test_when_the_compiled_check_cannot_read_a_value_jsonschema_decides(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def unreadable(data: Any) -> bool:
        raise error("cannot read this")

    monkeypatch.setattr(_inputs, "fast_input_check", lambda model: unreadable)
    validate_input(SCHNELL, {"prompt": "a boat"})
    with pytest.raises(InputValidationError) as caught:
        validate_input(SCHNELL, {"prompt": "a boat", "num_outputs": 7})
    assert caught.value.field == "num_outputs"


def test_a_known_model_without_a_compiled_check_is_still_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "fast_input_check", lambda model: None)
    validate_input(SCHNELL, {"prompt": "a boat"})
    with pytest.raises(InputValidationError) as caught:
        validate_input(SCHNELL, {"prompt": "a boat", "num_outputs": 7})
    assert caught.value.field == "num_outputs"


def test_a_single_problem_message_ends_with_the_rule_and_the_way_around() -> None:
    error = _refusal(SCHNELL, {"prompt": "x", "num_outputs": 9})
    assert f"{error.allowed}; " in str(error)
    assert "input_validation='off'" in str(error)


# --------------------------------------------------------------------------- nesting


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("validation", ["warn", "off"])
def test_63_nested_lists_inside_the_input_pass_and_64_are_refused_by_field(validation: Any) -> None:
    # the input object is level 1; MAX_INPUT_DEPTH = 64 levels in all
    sent = prepare_input(UNKNOWN, {"a": _nested(63)}, validation=validation)
    assert sent == {"a": _nested(63)}
    error = _refusal(UNKNOWN, {"a": _nested(64)}, validation=validation)
    assert error.field == "a" + "[0]" * 63
    assert error.value == "<nested>"


def test_nested_objects_count_like_lists() -> None:
    value: Any = 1
    for _ in range(64):
        value = {"k": value}
    error = _refusal(UNKNOWN, {"a": value}, validation="off")
    assert error.field == "a" + ".k" * 63
    assert error.value == "<nested>"


# --------------------------------------------------------------------------- values JSON cannot carry


def test_a_key_that_is_not_a_string_is_named_with_where_it_is() -> None:
    error = _refusal(UNKNOWN, {1: "x"}, validation="off")
    assert (error.field, error.value, error.allowed) == ("<input>", 1, "object keys must be strings")
    error = _refusal(UNKNOWN, {"a": {"b": {None: 1}}}, validation="off")
    assert (error.field, error.value) == ("a.b", None)


def test_an_integer_of_13000_bits_is_sent_and_one_bit_more_is_refused() -> None:
    biggest = (1 << 13_000) - 1
    assert prepare_input(UNKNOWN, {"n": biggest}, validation="off")["n"] == biggest
    error = _refusal(UNKNOWN, {"n": 1 << 13_000}, validation="off")
    assert (error.field, error.value, error.allowed) == (
        "n",
        "<int of 13001 bits>",
        "an integer JSON can carry",
    )


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_write_is_refused(number: float) -> None:
    error = _refusal(UNKNOWN, {"x": [number]}, validation="off")
    assert error.field == "x[0]"
    assert error.value is number
    assert error.allowed == "a finite number (JSON has no NaN or infinity)"


@pytest.mark.parametrize(("value", "kind"), [({1, 2}, "set"), (b"raw", "bytes"), (object(), "object")])
def test_a_value_of_another_type_is_refused_naming_its_type(value: object, kind: str) -> None:
    error = _refusal(UNKNOWN, {"prompt": "x", "other": {"v": value}}, validation="off")
    assert (error.field, error.value) == ("other.v", value)
    assert error.allowed == f"a JSON value (got {kind})"


def test_a_lone_surrogate_is_refused_with_the_text() -> None:
    text = "ab\udc80"
    error = _refusal(UNKNOWN, {"prompt": text}, validation="off")
    assert (error.field, error.value) == ("prompt", text)
    assert "position 2" in error.allowed


# --------------------------------------------------------------------------- files that change under us


def test_a_path_replaced_by_a_special_file_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "swapped.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    real_fstat = os.fstat

    def fifo(fd: int) -> os.stat_result:  # what the descriptor shows if a FIFO was swapped in
        r = real_fstat(fd)
        mode = stat.S_IFIFO | 0o600
        return os.stat_result((mode, r.st_ino, r.st_dev, r.st_nlink, r.st_uid, r.st_gid, 0, 0, 0, 0))

    monkeypatch.setattr(os, "fstat", fifo)
    error = _refusal(DEV, {"prompt": "x", "image": str(path)})
    assert (error.field, error.value) == ("image", str(path))


def test_an_unreadable_type_of_local_file_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"no magic and no extension")
    error = _refusal(DEV, {"prompt": "x", "image": str(path)})
    assert (error.field, error.value) == ("image", "blob")


# --------------------------------------------------------------------------- Cancel-After


@pytest.mark.parametrize("given", ["٣s", "５m", "1h٠m", 90, None, 1.5])
def test_cancel_after_must_be_ascii_text_and_the_refusal_keeps_the_value(given: Any) -> None:
    with pytest.raises(InputValidationError) as caught:
        _inputs.parse_cancel_after(given, field="cancel_after")
    assert caught.value.field == "cancel_after"
    assert caught.value.value is given


def test_cancel_after_names_the_field_it_was_given_as() -> None:
    with pytest.raises(InputValidationError) as caught:
        _inputs.parse_cancel_after("soon", field="--cancel-after")
    assert (caught.value.field, caught.value.value) == ("--cancel-after", "soon")
    assert _inputs.parse_cancel_after(" 1h30m45s ") == 5445.0
