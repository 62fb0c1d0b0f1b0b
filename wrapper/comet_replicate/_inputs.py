"""Turning what a caller passes into a request body, and refusing bad input before anything is sent.

- `split_model("owner/name")` checks the reference against the spec's path-parameter patterns.
- `prepare_input(model, input, validation=...)` accepts a dict or a generated typed input (anything
  with `to_dict`), turns local files (path, bytes, binary file object) in file fields into data URLs,
  makes sure the result is plain JSON, and checks it against the model's input schema from
  openapi.yaml when the model is known.

Validation can help but must never block a request the server would accept: a known field keeps
its type, enum and range checks; an unknown field is only a warning by default (Replicate ignores
inputs a model does not declare, and the bundled schema may be older than the model); `strict`
refuses it, `off` sends anything. Every refusal of a schema rule says how to bypass it.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import logging
import math
import mimetypes
import os
import re
import stat
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from . import _spec
from ._constants import DEFAULT_MAX_DATA_URL_BYTES
from ._errors import InputValidationError, UnknownInputFieldWarning, UnknownModelWarning
from ._spec import fast_input_check, image_fields, input_validator, model_entry, segment_pattern

__all__ = [
    "DEFAULT_MAX_DATA_URL_BYTES",
    "MAX_INPUT_DEPTH",
    "VALIDATION_MODES",
    "InputValidation",
    "data_url",
    "input_sha256",
    "parse_cancel_after",
    "prepare_input",
    "split_model",
    "suggest_model",
    "validate_input",
]

InputValidation = Literal["strict", "warn", "off"]
"""How much of a known model's schema is enforced: `strict` refuses unknown fields too, `warn` (the
default) checks known fields and warns about unknown ones, `off` sends anything."""
VALIDATION_MODES: tuple[InputValidation, ...] = ("strict", "warn", "off")


MAX_INPUT_DEPTH = 64
"""Nesting deeper than this is refused by name, before a JSON encoder or validator recurses into it
(no FLUX input nests more than two levels)."""

_URL_PREFIXES = ("http://", "https://", "data:")
_BYPASS = (
    "if the bundled schema is out of date, pass input_validation='off' (CLI: --validate off) to send it as is"
)
_MODEL_TYPOS = 1  # edits that still read as a typo; flux-2-dev is a model of its own, not flux-dev
_FIELD_CUTOFF = 0.6
_MAX_INT_BITS = 13_000  # ~3,900 digits: below Python's 4,300-digit int-to-str limit that json.dumps hits

log = logging.getLogger("comet_replicate")
_WARNED: set[tuple[str, str]] = set()
_WARNED_LOCK = threading.Lock()


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
        suggestion = suggest_model(model)
        hint = f"; did you mean {suggestion!r}?" if suggestion else ", e.g. 'black-forest-labs/flux-schnell'"
        raise InputValidationError(
            f"model {model!r} is not 'owner/name' (each part matching {pattern.pattern}){hint}",
            field="model",
            value=model,
            allowed=f"'owner/name' with parts matching {pattern.pattern}",
        )
    return parts[0], parts[1]


def _segment_pattern() -> re.Pattern[str]:
    return segment_pattern()


def _known_fields() -> Mapping[str, frozenset[str]]:
    """Each known model's declared input fields, read once from the spec (with the other facts the
    hot path needs, so the common valid create does not pin the whole parsed spec)."""
    return _spec.input_fields()


def suggest_model(model: str) -> str | None:
    """The known model one typo away from `model`, or None when none is.

    A typo is one inserted, deleted, replaced or swapped character, ignoring case, in the whole
    `owner/name` or, when the owner is missing or itself a typo of a known owner, in the name alone
    (`flux-schnel` → `black-forest-labs/flux-schnell`). Sibling models such as flux-2-dev are more
    than one edit from any known name, so they get no suggestion.
    """
    known = sorted(_known_fields())
    if not isinstance(model, str) or model in known:
        return None
    for candidate in known:
        if _typo_distance(model.lower(), candidate.lower()) <= _MODEL_TYPOS:
            return candidate
    owner, _, name = model.rpartition("/")
    owners = {k.split("/", 1)[0] for k in known}
    if owner and not any(_typo_distance(owner.lower(), o) <= _MODEL_TYPOS for o in owners):
        return None
    for candidate in known:
        if _typo_distance(name.lower(), candidate.rsplit("/", 1)[-1].lower()) <= _MODEL_TYPOS:
            return candidate
    return None


def _typo_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent swaps), stopping early past 2."""
    if abs(len(a) - len(b)) > 2:
        return 3
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > 2:
            return 3
        previous2, previous = previous, current
    return previous[-1]


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
        guessed, _ = mimetypes.guess_type(name)
        if guessed:
            return guessed
    return None


def _too_big(field: str, name: str | None, size: int | None, limit: int) -> InputValidationError:
    """The data-URL size refusal, showing the file's real size when it is known."""
    what = f"the file{f' {name!r}' if name else ''}"
    shown = f"is {size:,} bytes" if size is not None else f"is larger than {limit:,} bytes"
    return InputValidationError(
        f"input.{field}: {what} {shown}, above the {limit:,}-byte limit for inline data URLs; upload it "
        "and pass its https:// URL instead (or raise max_data_url_bytes)",
        field=field,
        value=name or (f"<{size} bytes>" if size is not None else f"<more than {limit} bytes>"),
        allowed=f"at most {limit} bytes, or an http(s) URL",
    )


def data_url(data: bytes, *, field: str, name: str | None = None, limit: int) -> str:
    """A base64 data URL for local bytes, refusing anything above `limit` bytes."""
    if len(data) > limit:
        raise _too_big(field, name, len(data), limit)
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
        if not value.strip() or not path.exists():
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
        shown = name if isinstance(name, str) else None
        data = _read_limited(value, limit)  # type: ignore[arg-type]
        if not isinstance(data, bytes):
            raise InputValidationError(
                f"input.{field}: the file object must be opened in binary mode ('rb')",
                field=field,
                value=name,
                allowed="a binary file object",
            )
        if len(data) > limit:
            raise _too_big(field, shown, _handle_size(value), limit)
        return data_url(data, field=field, name=shown, limit=limit)
    return value


def _read_limited(handle: IO[bytes], limit: int) -> bytes:
    # Read one byte past the limit so an oversized file is refused without reading all of it.
    return handle.read(limit + 1)


def _handle_size(handle: object) -> int | None:
    """The size of an open regular file, when it has one (for the error message only)."""
    fileno = getattr(handle, "fileno", None)
    if not callable(fileno):
        return None
    try:
        info = os.fstat(fileno())
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _not_regular(path: Path, field: str) -> InputValidationError:
    return InputValidationError(
        f"input.{field}: {str(path)!r} is not a regular file (a directory, device, FIFO or socket); "
        "pass an image file or an https:// URL",
        field=field,
        value=str(path),
        allowed="a regular local image file, or an http(s) URL",
    )


def _read_path(path: Path, *, field: str, limit: int) -> str:
    """Read a local image with a bound: regular files only, never more than `limit` + 1 bytes.

    A device such as /dev/zero reports size 0 and never ends; a FIFO blocks an open for reading until
    a writer appears. Both are refused before opening, and the open itself does not block
    (O_NONBLOCK), with the type checked again on the open descriptor in case the path changed.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise _not_regular(path, field)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _not_regular(path, field)
            if info.st_size > limit:
                raise _too_big(field, path.name, info.st_size, limit)
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InputValidationError(
            f"input.{field}: cannot read {str(path)!r}: {exc.strerror or exc}",
            field=field,
            value=str(path),
            allowed="a readable local image",
        ) from exc
    if len(data) > limit:  # the file grew after fstat
        raise _too_big(field, path.name, None, limit)
    return data_url(data, field=field, name=path.name, limit=limit)


def prepare_input(
    model: str,
    value: object,
    *,
    validation: InputValidation = "warn",
    max_data_url_bytes: int = DEFAULT_MAX_DATA_URL_BYTES,
) -> dict[str, Any]:
    """The request `input` for `model`: files turned into data URLs, then checked as plain JSON and,
    when the model is known, against its input schema.

    For a model in the spec's `x-models`, file fields are the schema's `format: uri` properties; a
    string there may be a URL or a local path. For other models only unambiguous local data (bytes,
    `Path`, binary file objects) is converted, since a string could mean anything. An unknown model
    whose name is close to a known one gets an `UnknownModelWarning` (it is still sent).

    `validation`: `"warn"` (default) refuses a known field's bad type, value or range and warns once
    per model and field about fields the schema does not list; `"strict"` refuses those too; `"off"`
    checks nothing against the schema. Values JSON cannot carry (sets, objects, lone surrogates,
    nesting deeper than MAX_INPUT_DEPTH) are refused in every mode.
    """
    if validation not in VALIDATION_MODES:
        raise InputValidationError(
            f"input_validation={validation!r} is not one of 'strict', 'warn', 'off'",
            field="input_validation",
            value=validation,
            allowed="'strict', 'warn' or 'off'",
        )
    data = _to_mapping(value)
    known = model_entry(model) is not None
    if not known and validation != "off":
        _hint_unknown_model(model)
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
    data = _plain(data)
    if known and validation != "off":
        _validate(model, data, validation)  # mutation-point: validate-input
    return data


def _hint_unknown_model(model: str) -> None:
    suggestion = suggest_model(model)
    if suggestion is None:
        return
    _warn_once(
        model,
        "",
        UnknownModelWarning,
        f"model {model!r} is not described by the bundled spec; did you mean {suggestion!r}? "
        "Sending it as given (it may be a newer model)",
    )


def _warn_once(model: str, field: str, category: type[Warning], message: str) -> None:
    with _WARNED_LOCK:
        if (model, field) in _WARNED:
            return
        _WARNED.add((model, field))
    log.warning("%s", message)
    warnings.warn(message, category, stacklevel=_caller_stacklevel())


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_stacklevel() -> int:
    """The `stacklevel` that points `warnings.warn` (called by `_warn_once`) at the first frame
    outside this package: the user's own line, whichever path (create, run, validate_input, a batch)
    led here, so the shown location and `-W ...:module` filters name the caller, not the library.

    Not mutated: under mutmut's trampoline, frames of mutmut itself sit between ours, so no test can
    judge a stack walk there; tests/wrapper/test_warning_location.py proves it in the normal run."""
    frame = inspect.currentframe()  # pragma: no mutate
    level = 0  # pragma: no mutate  (this function's frame; `_warn_once` is level 1 for warnings.warn)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):  # pragma: no mutate
        frame = frame.f_back  # pragma: no mutate
        level += 1  # pragma: no mutate
    return max(level, 1)  # pragma: no mutate


def validate_input(model: str, data: Mapping[str, Any], *, validation: InputValidation = "warn") -> None:
    """Check `data` against the model's input schema; the error names the field, value and rule.

    Unknown fields are warned about (`warn`) or refused (`strict`), with the closest known field
    suggested; `off` returns at once.
    """
    if validation != "off":
        _validate(model, _plain(data), validation)


def _validate(model: str, plain: dict[str, Any], validation: InputValidation) -> None:
    """`validate_input` on data `_plain` already produced (only JSON types, so the compiled check and
    jsonschema read the same values)."""
    fast = fast_input_check(model)
    passed = False
    if fast is not None:
        try:
            passed = bool(fast(plain))
        except (ValueError, TypeError, OverflowError):
            passed = False  # a value the Rust side cannot read: jsonschema decides
    if not passed:
        validator = input_validator(model)
        if validator is None:
            return
        errors = sorted(validator.iter_errors(plain), key=lambda e: (list(e.absolute_path), e.validator))
        if errors:
            first = errors[0]
            field, value, allowed = _describe(first)
            count = len(errors) - 1
            more = f" (and {count} more problem{'s' if count > 1 else ''})" if count else ""
            raise InputValidationError(
                f"{model} input.{field}: {_show(value)} is not allowed; {allowed}{more}; {_BYPASS}",
                field=field,
                value=value,
                allowed=allowed,
            )
    _check_unknown_fields(model, plain, validation)


def _check_unknown_fields(model: str, data: Mapping[str, Any], validation: InputValidation) -> None:
    known = _known_fields().get(model)
    if known is None:
        return
    for field in data:
        if field in known:
            continue
        import difflib  # only an unknown field's suggestion needs it: not loaded with the client

        close = difflib.get_close_matches(field, sorted(known), n=1, cutoff=_FIELD_CUTOFF)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        if validation == "strict":
            raise InputValidationError(
                f"{model} input.{field}: unknown field{hint}; known fields: {', '.join(sorted(known))}. "
                "If the bundled schema is out of date, pass input_validation='warn' (CLI: --validate warn) "
                "to send it with a warning, or 'off'",
                field=field,
                value=data[field],
                allowed="one of: " + ", ".join(sorted(known)),
            )
        _warn_once(
            model,
            field,
            UnknownInputFieldWarning,
            f"{model} input.{field}: not in the bundled schema{hint}; sent as given (the server may "
            "ignore it); pass input_validation='strict' to refuse unknown fields",
        )


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `value` holding only what JSON carries (dict with str keys, list, str, int, float,
    bool, None); tuples become lists and subclasses of str/int/float (enums) their base values.

    Anything else is refused naming its field: a set or object() would otherwise fail later as a
    TypeError, a lone surrogate as a UnicodeEncodeError, deep nesting as a RecursionError, NaN or an
    infinity as invalid JSON, and a huge int as a ValueError from the encoder. The walk is iterative,
    so its own depth is bounded by MAX_INPUT_DEPTH, not by the interpreter's stack.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any, str, int]] = [(value, root, "", 0)]
    while stack:
        source, target, path, depth = stack.pop()
        if isinstance(source, Mapping):
            items: Any = source.items()
        else:
            items = enumerate(source)
        for key, item in items:
            if isinstance(target, dict):
                if not isinstance(key, str):
                    raise _not_json(path or "<input>", key, "object keys must be strings")
                where = f"{path}.{key}" if path else key
            else:
                where = f"{path}[{key}]"
            converted: Any
            if type(item) in _JSON_SCALARS:
                converted = _scalar(item, where)
            elif isinstance(item, Mapping | list | tuple):
                if depth + 1 >= MAX_INPUT_DEPTH:
                    raise _not_json(where, "<nested>", f"nesting deeper than {MAX_INPUT_DEPTH} levels")
                child: Any = {} if isinstance(item, Mapping) else []
                stack.append((item, child, where, depth + 1))
                converted = child
            else:
                converted = _scalar(item, where)
            if isinstance(target, dict):
                target[str.__str__(key)] = converted
            else:
                target.append(converted)
    return root


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})
"""The exact types `_scalar` takes as they are (after its checks); none of them is a container."""


def _scalar(item: object, where: str) -> object:
    if type(item) is str and item.isascii():
        return item  # ASCII text has no surrogate to refuse
    if item is None or item is True or item is False:
        return item
    if isinstance(item, str):
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _not_json(
                where, item, f"text with an unpaired surrogate at position {exc.start} (not valid UTF-8)"
            ) from None
        return str.__str__(item)
    if isinstance(item, bool):
        return bool(item)
    if isinstance(item, int):
        if item.bit_length() > _MAX_INT_BITS:
            raise _not_json(where, f"<int of {item.bit_length()} bits>", "an integer JSON can carry")
        return int(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise _not_json(where, item, "a finite number (JSON has no NaN or infinity)")
        return float(item)
    raise _not_json(where, item, f"a JSON value (got {type(item).__name__})")


def _not_json(field: str, value: object, allowed: str) -> InputValidationError:
    return InputValidationError(
        f"input.{field}: {_show(value)} cannot be sent as JSON; expected {allowed}",
        field=field,
        value=value,
        allowed=allowed,
    )


def input_sha256(data: Mapping[str, Any]) -> str:
    """SHA-256 of the input's canonical JSON (sorted keys, no spaces): the same input, the same hash.

    `CreateOutcomeUnknown.input_sha256` uses it, so a caller can match a lost create to a prediction
    listed later.
    """
    canonical = json.dumps(_plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_DURATION = r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"  # compiled on first use (re's cache)


def parse_cancel_after(value: str, *, field: str = "cancel_after") -> float:
    """Seconds in a `Cancel-After` value written in Replicate's documented form.

    A bare number means seconds (`90`); otherwise `h`, `m` and `s` units, alone or combined in that
    order (`90s`, `5m`, `1h30m45s`). Replicate documents no other form (the spec sets no pattern), so
    anything else is refused here, naming the field. The 5-second minimum is the caller's business
    (the client rounds a shorter deadline up).
    """
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit():
        return float(int(text))
    match = re.fullmatch(_DURATION, text) if text.isascii() else None
    if not text or match is None or not any(match.groups()):
        raise InputValidationError(
            f"{field}={value!r} is not a duration; use seconds (a positive number) or a duration "
            "such as '90s', '5m' or '1h30m45s'",
            field=field,
            value=value,
            allowed="seconds as digits, or h/m/s units such as '90s', '5m', '1h30m45s'",
        )
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


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
