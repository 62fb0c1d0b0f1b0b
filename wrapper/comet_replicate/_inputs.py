"""Turning what a caller passes into a request body, and refusing bad input before anything is sent.

- `split_model("owner/name")` checks the reference against the spec's path-parameter patterns.
- `prepare_input(model, input)` accepts a dict or a generated typed input (anything with `to_dict`),
  turns local files (path, bytes, binary file object) in file fields into data URLs, and validates
  the result against the model's input schema from openapi.yaml when the model is known.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ._constants import DEFAULT_MAX_DATA_URL_BYTES
from ._errors import InputValidationError

__all__ = ["DEFAULT_MAX_DATA_URL_BYTES", "data_url", "prepare_input", "split_model", "validate_input"]

_SEGMENT_POINTER = "#/components/parameters/ModelOwner"
_URL_PREFIXES = ("http://", "https://", "data:")


def split_model(model: str) -> tuple[str, str]:
    """Split `owner/name`, checking both parts against the spec's path-parameter patterns."""
    if not isinstance(model, str):
        raise InputValidationError(
            f"model must be a string 'owner/name', got {type(model).__name__}",
            field="model",
            value=model,
            allowed="'owner/name'",
        )
    parts = model.split("/")
    pattern = _segment_pattern()
    if len(parts) != 2 or not all(pattern.fullmatch(p) for p in parts):
        raise InputValidationError(
            f"model {model!r} is not 'owner/name' (each part matching {pattern.pattern}), "
            "e.g. 'black-forest-labs/flux-schnell'",
            field="model",
            value=model,
            allowed=f"'owner/name' with parts matching {pattern.pattern}",
        )
    return parts[0], parts[1]


def _segment_pattern() -> re.Pattern[str]:
    from ._spec import segment_pattern

    return segment_pattern()


def _to_mapping(value: object) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise InputValidationError(
        f"input must be a dict or a generated input model, got {type(value).__name__}",
        field="input",
        value=value,
        allowed="dict or comet_replicate_api.models.*Input",
    )


def _sniff_mime(data: bytes, name: str | None) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if name:
        import mimetypes

        guessed, _ = mimetypes.guess_type(name)
        if guessed:
            return guessed
    return None


def data_url(data: bytes, *, field: str, name: str | None = None, limit: int) -> str:
    """A base64 data URL for local bytes, refusing anything above `limit` bytes."""
    if len(data) > limit:
        raise InputValidationError(
            f"input.{field}: the file{f' {name!r}' if name else ''} is {len(data):,} bytes, above the "
            f"{limit:,}-byte limit for inline data URLs; upload it and pass its https:// URL instead "
            "(or raise max_data_url_bytes)",
            field=field,
            value=name or f"<{len(data)} bytes>",
            allowed=f"at most {limit} bytes, or an http(s) URL",
        )
    mime = _sniff_mime(data, name)
    if mime is None:
        raise InputValidationError(
            f"input.{field}: cannot tell the type of {name or 'the given bytes'!r} "
            "(not PNG, JPEG, GIF or WEBP, and no known file extension)",
            field=field,
            value=name or f"<{len(data)} bytes>",
            allowed="a PNG, JPEG, GIF or WEBP image, or an http(s) URL",
        )
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _file_value(value: object, *, field: str, limit: int, strings_are_paths: bool) -> object:
    """One file-field value → URL string; values that are not local files pass through untouched."""
    if isinstance(value, str):
        if value.startswith(_URL_PREFIXES) or not strings_are_paths:
            return value
        path = Path(value)
        if not path.is_file():
            raise InputValidationError(
                f"input.{field}: {value!r} is neither an http(s)/data URL nor an existing file",
                field=field,
                value=value,
                allowed="an http(s) URL, a data URL, or a path to a local image",
            )
        return _read_path(path, field=field, limit=limit)
    if isinstance(value, os.PathLike):
        return _read_path(Path(os.fspath(value)), field=field, limit=limit)
    if isinstance(value, bytes | bytearray | memoryview):
        return data_url(bytes(value), field=field, limit=limit)
    read = getattr(value, "read", None)
    if callable(read):
        name = getattr(value, "name", None)
        data = _read_limited(value, limit)  # type: ignore[arg-type]
        if not isinstance(data, bytes):
            raise InputValidationError(
                f"input.{field}: the file object must be opened in binary mode ('rb')",
                field=field,
                value=name,
                allowed="a binary file object",
            )
        return data_url(data, field=field, name=name if isinstance(name, str) else None, limit=limit)
    return value


def _read_limited(handle: IO[bytes], limit: int) -> bytes:
    # Read one byte past the limit so an oversized file is refused without reading all of it.
    return handle.read(limit + 1)


def _read_path(path: Path, *, field: str, limit: int) -> str:
    try:
        size = path.stat().st_size
        if size > limit:
            return data_url(b"\0" * (limit + 1), field=field, name=path.name, limit=limit)
        data = path.read_bytes()
    except OSError as exc:
        raise InputValidationError(
            f"input.{field}: cannot read {str(path)!r}: {exc.strerror or exc}",
            field=field,
            value=str(path),
            allowed="a readable local image",
        ) from exc
    return data_url(data, field=field, name=path.name, limit=limit)


def prepare_input(
    model: str, value: object, *, max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES
) -> dict[str, Any]:
    """The request `input` for `model`: files turned into data URLs, then validated when the model is known.

    For a model in the spec's `x-models`, file fields are the schema's `format: uri` properties; a
    string there may be a URL or a local path. For other models only unambiguous local data (bytes,
    `Path`, binary file objects) is converted, since a string could mean anything.
    """
    from ._spec import image_fields, model_entry

    data = _to_mapping(value)
    known = model_entry(model) is not None
    fields = image_fields(model) if known else {}
    for key, item in list(data.items()):
        if known and key not in fields:
            continue
        is_array = fields.get(key, isinstance(item, list | tuple))
        if is_array and isinstance(item, list | tuple):
            data[key] = [
                _file_value(v, field=f"{key}[{i}]", limit=max_data_url_bytes, strings_are_paths=known)
                for i, v in enumerate(item)
            ]
        else:
            data[key] = _file_value(item, field=key, limit=max_data_url_bytes, strings_are_paths=known)
    if known:
        validate_input(model, data)
    return data


def validate_input(model: str, data: Mapping[str, Any]) -> None:
    """Check `data` against the model's input schema; the error names the field, value and rule."""
    from ._spec import fast_input_check, input_validator

    fast = fast_input_check(model)
    if fast is not None and _plain_json(data):
        try:
            if fast(data):
                return
        except (ValueError, TypeError, OverflowError):
            pass  # a value the Rust side cannot read: jsonschema decides
    validator = input_validator(model)
    if validator is None:
        return
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(e.absolute_path), e.validator))
    if not errors:
        return
    first = errors[0]
    field, value, allowed = _describe(first)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    raise InputValidationError(
        f"{model} input.{field}: {_show(value)} is not allowed; {allowed}{more}",
        field=field,
        value=value,
        allowed=allowed,
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: object, depth: int = 0) -> bool:
    """True when `value` holds only dict/list/str/int/float/bool/None: the types on which the fast
    check and jsonschema agree (jsonschema-rs would also read a tuple as an array, jsonschema not)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth > 32:
        return False
    if kind is dict and isinstance(value, dict):
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    if kind is list and isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    return False


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(error: Any) -> tuple[str, object, str]:
    path = ".".join(str(p) for p in error.absolute_path)
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    value = error.instance
    if keyword == "enum":
        allowed = "allowed: " + ", ".join(repr(v) for v in error.validator_value)
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            allowed = f"allowed: {low} to {high}"
        else:
            sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[
                keyword
            ]
            allowed = f"allowed: {sign} {error.validator_value}"
    elif keyword == "type":
        allowed = f"expected type {error.validator_value}"
    elif keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return missing, None, "this field is required"
    elif keyword == "additionalProperties":
        extras = sorted(set(error.instance) - set(schema.get("properties", {})))
        field = extras[0] if extras else path
        known = ", ".join(sorted(schema.get("properties", {})))
        return field, error.instance.get(field) if extras else value, f"unknown field; known fields: {known}"
    elif keyword in ("maxItems", "minItems"):
        allowed = f"{'at most' if keyword == 'maxItems' else 'at least'} {error.validator_value} items"
    else:
        allowed = f"{keyword}: {error.message}"
    return path or "<input>", value, allowed
