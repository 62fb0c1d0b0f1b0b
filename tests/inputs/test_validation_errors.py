"""A refused input names the field, the value and what is allowed, for every kind of schema rule."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from comet_replicate import InputValidationError
from comet_replicate._inputs import _describe, validate_input

SCHNELL = "black-forest-labs/flux-schnell"


def _refusal(data: dict[str, Any], model: str = SCHNELL) -> InputValidationError:
    with pytest.raises(InputValidationError) as caught:
        validate_input(model, data)
    return caught.value


def _first_error(schema: dict[str, Any], instance: object) -> Any:
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    assert len(errors) == 1, errors
    return errors[0]


# --------------------------------------------------------------------------- through validate_input


def test_an_enum_refusal_lists_the_allowed_values() -> None:
    error = _refusal({"prompt": "x", "aspect_ratio": "7:3"})
    assert (error.field, error.value) == ("aspect_ratio", "7:3")
    assert "'1:1'" in error.allowed and "'9:21'" in error.allowed and "'16:9'" in error.allowed
    assert "is not one of" not in error.allowed  # the values themselves, not the validator's sentence


@pytest.mark.parametrize("value", [0, 5, 9])
def test_a_range_refusal_gives_both_bounds(value: int) -> None:
    error = _refusal({"prompt": "x", "num_outputs": value})
    assert (error.field, error.value) == ("num_outputs", value)
    assert "1 to 4" in error.allowed


def test_a_type_refusal_names_the_expected_type() -> None:
    error = _refusal({"prompt": 3})
    assert (error.field, error.value) == ("prompt", 3)
    assert "string" in error.allowed


def test_a_missing_required_field_is_named() -> None:
    error = _refusal({"aspect_ratio": "1:1"})
    assert (error.field, error.value, error.allowed) == ("prompt", None, "this field is required")


def test_the_first_problem_by_field_is_reported_and_the_rest_counted() -> None:
    two = _refusal({"prompt": 3, "num_outputs": 9})
    assert two.field == "num_outputs"  # fields in order: num_outputs before prompt
    assert "(and 1 more problem)" in str(two)
    three = _refusal({"prompt": 3, "num_outputs": 9, "seed": "x"})
    assert three.field == "num_outputs"
    assert "(and 2 more problems)" in str(three)
    one = _refusal({"prompt": "x", "num_outputs": 9})
    assert "more problem" not in str(one)


@pytest.mark.parametrize(("length", "whole"), [(77, True), (78, True), (79, False), (200, False)])
def test_a_long_value_is_shown_cut_to_80_characters(length: int, whole: bool) -> None:
    value = "r" * length  # repr adds two quotes: 78 characters → an 80-character repr
    error = _refusal({"prompt": "x", "aspect_ratio": value})
    shown = repr(value) if whole else repr(value)[:77] + "..."
    assert f"{shown} is not allowed" in str(error)
    assert error.value == value  # the error object keeps the whole value


def test_a_model_outside_the_spec_is_not_validated() -> None:
    validate_input("someone/some-model", {"num_outputs": "lots", "prompt": 3})


# --------------------------------------------------------------------------- every rule, on hand-made schemas


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "integer", "minimum": 1}, 0, ">= 1"),
        ({"type": "integer", "maximum": 4}, 5, "<= 4"),
        ({"type": "number", "exclusiveMinimum": 0}, 0, "> 0"),
        ({"type": "number", "exclusiveMaximum": 5}, 5, "< 5"),
        ({"type": "integer", "minimum": 1, "maximum": 4}, 9, "1 to 4"),
    ],
)
def test_each_bound_is_worded_with_its_comparison(
    schema: dict[str, Any], instance: object, expected: str
) -> None:
    field, value, allowed = _describe(_first_error({"properties": {"n": schema}}, {"n": instance}))
    assert (field, value) == ("n", instance)
    assert expected in allowed


@pytest.mark.parametrize(
    ("keyword", "bound", "instance", "expected"),
    [("maxItems", 2, [1, 2, 3], "at most 2 items"), ("minItems", 2, [1], "at least 2 items")],
)
def test_item_counts_are_worded_as_at_most_or_at_least(
    keyword: str, bound: int, instance: list[int], expected: str
) -> None:
    error = _first_error({"properties": {"images": {"type": "array", keyword: bound}}}, {"images": instance})
    assert _describe(error) == ("images", instance, expected)


def test_an_unknown_field_is_named_with_its_value_and_the_known_fields() -> None:
    schema = {"type": "object", "properties": {"b": {}, "a": {}}, "additionalProperties": False}
    field, value, allowed = _describe(_first_error(schema, {"a": 1, "zz": 2, "extra": 3}))
    assert (field, value) == ("extra", 3)  # the first unknown field in sorted order
    assert "a, b" in allowed


def test_an_unknown_field_of_a_schema_without_properties_is_named() -> None:
    schema = {"type": "object", "additionalProperties": False}
    assert _describe(_first_error(schema, {"x": 1}))[:2] == ("x", 1)


def test_a_required_field_is_named_by_the_validators_message() -> None:
    error = _first_error({"type": "object", "required": ["prompt"]}, {})
    field, value, allowed = _describe(error)
    assert (field, value) == ("prompt", None)
    assert "required" in allowed


def test_a_nested_problem_is_named_by_its_dotted_path_and_a_whole_input_problem_as_input() -> None:
    schema = {"properties": {"a": {"items": {"properties": {"b": {"type": "string"}}}}}}
    field, value, _ = _describe(_first_error(schema, {"a": [{"b": "ok"}, {"b": 7}]}))
    assert (field, value) == ("a.1.b", 7)
    field, value, _ = _describe(_first_error({"type": "object"}, [1]))
    assert (field, value) == ("<input>", [1])


def test_any_other_rule_is_named_with_the_validators_message() -> None:
    error = _first_error({"properties": {"s": {"pattern": "^a"}}}, {"s": "b"})
    field, value, allowed = _describe(error)
    assert (field, value) == ("s", "b")
    assert allowed.startswith("pattern: ") and error.message in allowed


def test_a_required_field_the_message_does_not_quote_is_shown_as_a_question_mark() -> None:
    from types import SimpleNamespace

    error = SimpleNamespace(
        validator="required",
        validator_value=["prompt"],
        message="a required property is missing",
        absolute_path=[],
        schema={"required": ["prompt"]},
        instance={},
    )
    field, value, _ = _describe(error)
    assert (field, value) == ("?", None)
