"""Input problems worded as Replicate words them: gojsonschema error types and sentences.

jsonschema finds the errors (the rules come from openapi.yaml); this module only names them the way
Replicate's `invalid_fields[]` entries do (`{"type": "number_lte", "field": "input.seed", ...}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jsonschema.exceptions import ValidationError

Field = dict[str, str]

# Replicate reports input errors with gojsonschema's error type names.
_ERROR_TYPES = {
    "required": "required",
    "enum": "enum",
    "const": "const",
    "type": "invalid_type",
    "maximum": "number_lte",
    "minimum": "number_gte",
    "exclusiveMaximum": "number_lt",
    "exclusiveMinimum": "number_gt",
    "additionalProperties": "additional_property_not_allowed",
    "maxItems": "array_max_items",
    "minItems": "array_min_items",
    "maxLength": "string_lte",
    "minLength": "string_gte",
    "pattern": "pattern",
    "format": "format",
    "multipleOf": "multiple_of",
}

_JSON_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "NoneType": "null",
    "dict": "object",
    "list": "array",
}


def _schema(error: ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _enum(error: ValidationError, name: str) -> str:
    allowed = error.validator_value if isinstance(error.validator_value, list) else []
    return f"{name} must be one of the following: " + ", ".join(json.dumps(v) for v in allowed)


def _type(error: ValidationError, name: str) -> str:
    expected = error.validator_value
    expected = "/".join(expected) if isinstance(expected, list) else expected
    given = type(error.instance).__name__
    return f"Invalid type. Expected: {expected}, given: {_JSON_TYPES.get(given, given)}"


_SENTENCES: dict[str, Callable[[ValidationError, str], str]] = {
    "enum": _enum,
    "type": _type,
    "maximum": lambda e, _: f"Must be less than or equal to {_schema(e).get('maximum')}",
    "minimum": lambda e, _: f"Must be greater than or equal to {_schema(e).get('minimum')}",
    "format": lambda e, _: f"Does not match format '{e.validator_value}'",
    "maxItems": lambda e, _: f"Array must have at most {e.validator_value} items",
}


def describe(error: ValidationError, name: str) -> str:
    """A gojsonschema-style sentence, which is what Replicate puts in `invalid_fields[].description`."""
    sentence = _SENTENCES.get(str(error.validator))
    return sentence(error, name) if sentence is not None else error.message


def _dotted(*parts: str) -> str:
    return ".".join(filter(None, parts))


def _missing(error: ValidationError, prefix: str, path: list[str]) -> Iterable[Field]:
    """One entry per required property the object lacks."""
    assert isinstance(error.instance, Mapping)
    required = error.validator_value if isinstance(error.validator_value, list) else []
    for name in (r for r in required if r not in error.instance):
        field = _dotted(prefix, *path, str(name))
        yield {"type": "required", "field": field, "description": f"{name} is required"}


def _extras(error: ValidationError, prefix: str, path: list[str]) -> Iterable[Field]:
    """One entry per property the schema does not allow."""
    assert isinstance(error.instance, Mapping)
    schema = _schema(error)
    known = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    field = _dotted(prefix, *path) or "(root)"
    for name in error.instance:
        if name not in known and not any(p.search(name) for p in patterns):
            yield {
                "type": "additional_property_not_allowed",
                "field": field,
                "description": f"Additional property {name} is not allowed",
            }


def _entries(error: ValidationError, prefix: str) -> Iterable[Field]:
    path = [str(p) for p in error.absolute_path]
    is_object = isinstance(error.instance, Mapping)
    if error.validator == "required" and is_object:
        return _missing(error, prefix, path)
    if error.validator == "additionalProperties" and is_object:
        return _extras(error, prefix, path)
    name = path[-1] if path else (prefix or "(root)")
    kind = str(error.validator)
    field = _dotted(prefix, *path) or "(root)"
    return [{"type": _ERROR_TYPES.get(kind, kind), "field": field, "description": describe(error, name)}]


def invalid_fields(errors: list[ValidationError], prefix: str) -> list[Field]:
    """Map jsonschema errors to Replicate's `invalid_fields` entries (field paths like `input.seed`)."""
    unique: list[Field] = []
    for error in errors:
        for entry in _entries(error, prefix):
            if entry not in unique:  # one jsonschema error per missing property repeats the others
                unique.append(entry)
    return unique
