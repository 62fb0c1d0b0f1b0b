"""The compiled (jsonschema-rs) input check is only a fast path: jsonschema keeps the final word."""

from __future__ import annotations

from typing import Any

import pytest
from comet_replicate import InputValidationError
from comet_replicate._inputs import prepare_input, validate_input
from comet_replicate._spec import fast_input_check, input_validator

SCHNELL = "black-forest-labs/flux-schnell"


def test_fast_check_is_compiled_for_every_known_model_and_absent_for_unknown_ones() -> None:
    from comet_replicate._spec import known_models

    for model in known_models():
        assert fast_input_check(model) is not None, model
    assert fast_input_check("someone/unknown-model") is None


@pytest.mark.parametrize(
    "data",
    [
        {"prompt": "a boat"},
        {"prompt": "a boat", "num_outputs": 4, "aspect_ratio": "16:9", "go_fast": False},
        {"prompt": "a boat", "num_outputs": 0},
        {"prompt": "a boat", "num_outputs": True},
        {"prompt": "a boat", "aspect_ratio": "7:3"},
        {"prompt": "a boat", "extra": 1},
        {"num_outputs": 1},
        {"prompt": 3},
        {"prompt": "a boat", "seed": 2**70},
        {"prompt": "a boat", "seed": 1.0},
    ],
)
def test_fast_check_agrees_with_jsonschema(data: dict[str, Any]) -> None:
    fast = fast_input_check(SCHNELL)
    validator = input_validator(SCHNELL)
    assert fast is not None and validator is not None
    assert fast(data) == validator.is_valid(data)


def test_a_tuple_where_the_schema_wants_a_string_is_still_refused_with_jsonschemas_wording() -> None:
    with pytest.raises(InputValidationError) as caught:
        validate_input(SCHNELL, {"prompt": ("a", "boat")})
    assert caught.value.field == "prompt"
    assert "expected type string" in str(caught.value)


def test_values_the_fast_check_cannot_read_fall_back_to_jsonschema() -> None:
    with pytest.raises(InputValidationError) as caught:
        validate_input(SCHNELL, {"prompt": "a boat", "seed": object()})
    assert caught.value.field == "seed"


def test_an_invalid_input_still_names_field_value_and_rule() -> None:
    with pytest.raises(InputValidationError) as caught:
        prepare_input(SCHNELL, {"prompt": "a boat", "num_outputs": 9})
    assert caught.value.field == "num_outputs"
    assert caught.value.value == 9
    assert "1 to 4" in str(caught.value)
