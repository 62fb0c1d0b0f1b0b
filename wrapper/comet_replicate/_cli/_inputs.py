"""Build a prediction's ``input`` from ``--input-file``, ``--prompt`` and ``-i key=value``.

``-i`` values are typed by the model's input schema (integers, numbers, booleans, null, JSON arrays and
objects, strings). A value that fits none of the field's types is passed through as a string so that
the wrapper's validator, which reads the same contract, names the field and what it allows.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import CliUsageError
from ._schema import FieldInfo, model_info

__all__ = ["MAX_INPUT_FILE_BYTES", "build_input", "coerce_value", "parse_assignment", "read_input_file"]

#: Largest ``--input-file`` read: far above any prediction input, small enough that a device or an
#: endless pipe given by mistake ends in an error rather than filling memory.
MAX_INPUT_FILE_BYTES = 32 * 1024 * 1024

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# The order in which a field's types are tried: the most specific reading of the text wins.
_TYPE_ORDER = ("null", "boolean", "integer", "number", "array", "object", "string")


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``key=value`` at the first ``=``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CliUsageError(f"-i expects key=value, got {text!r}")
    return key, value


def _as_type(value: str, type_name: str) -> tuple[bool, Any]:
    lowered = value.strip().lower()
    if type_name == "null":
        return (lowered in {"null", "none"}), None
    if type_name == "boolean":
        if lowered in _TRUE:
            return True, True
        if lowered in _FALSE:
            return True, False
        return False, None
    if type_name == "integer":
        try:
            return True, int(value.strip())
        except ValueError:
            return False, None
    if type_name == "number":
        try:
            return True, int(value.strip())
        except ValueError:
            pass
        try:
            number = float(value.strip())
        except ValueError:
            return False, None
        return (number == number and number not in (float("inf"), float("-inf"))), number
    if type_name in {"array", "object"}:
        try:
            parsed = json.loads(value)
        except ValueError:
            return False, None
        expected = list if type_name == "array" else dict
        return isinstance(parsed, expected), parsed
    if type_name == "string":
        return True, value
    return False, None


def coerce_value(value: str, field: FieldInfo | None) -> Any:
    """Type one ``-i`` value by its field's schema (JSON reading for fields the contract does not list)."""
    if field is None:
        try:
            return json.loads(value)
        except ValueError:
            return value
    types = field.types or ["string"]
    for type_name in sorted(types, key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else 99):
        ok, typed = _as_type(value, type_name)
        if ok:
            return typed
    return value


def _deepest_line(text: str) -> tuple[int, int]:
    """``(line, depth)`` where arrays and objects nest deepest (outside strings), for the error line."""
    depth = deepest = 0
    line = deepest_line = 1
    in_string = escaped = False
    for char in text:
        if char == "\n":
            line += 1
        elif in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        elif char in "]}":
            depth -= 1
    return deepest_line, deepest


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, at most :data:`MAX_INPUT_FILE_BYTES`; devices and directories are refused.

    A pipe (``--input-file <(…)``) is read like a file; ``/dev/zero`` or an endless pipe stops at the cap.
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise CliUsageError(f"--input-file {path} is a directory, not a JSON file")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise CliUsageError(f"--input-file {path} is a device, not a JSON file")
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise CliUsageError(f"cannot read --input-file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise CliUsageError(
            f"--input-file {path} is larger than {MAX_INPUT_FILE_BYTES:,} bytes; an input is a small JSON "
            "object (give large images as URLs or file paths)"
        )
    return data


def read_input_file(path: Path) -> dict[str, Any]:
    """Read a JSON object of inputs; accepts either the input itself or ``{"input": {...}}``.

    Every way the file can be wrong (not readable, not UTF-8, not JSON, nested too deeply to read, not
    an object) is one usage error naming the file and, where there is one, the line.
    """
    data = _read_bounded(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CliUsageError(f"--input-file {path} is not UTF-8 text (line {line}: {exc.reason})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliUsageError(
            f"--input-file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        line, depth = _deepest_line(text)
        raise CliUsageError(
            f"--input-file {path} nests arrays or objects too deeply to read (line {line}: depth {depth:,})"
        ) from None
    if isinstance(document, dict) and set(document) == {"input"} and isinstance(document["input"], dict):
        document = document["input"]
    if not isinstance(document, dict):
        raise CliUsageError(f"--input-file {path} must hold a JSON object, not {type(document).__name__}")
    return document


def build_input(
    model: str,
    *,
    prompt: str | None = None,
    assignments: Sequence[str] = (),
    input_file: Path | None = None,
) -> dict[str, Any]:
    """Merge the input sources in order: file, then ``--prompt``, then each ``-i`` (last one wins)."""
    data: dict[str, Any] = read_input_file(input_file) if input_file is not None else {}
    if prompt is not None:
        data["prompt"] = prompt
    info = model_info(model)
    known_model = info is not None
    for text in assignments:
        key, raw = parse_assignment(text)
        field = info.field(key) if info is not None else None
        if known_model and field is None:
            # An unknown field of a known model: keep the text; the wrapper's validator rejects it by name.
            data[key] = raw
        else:
            data[key] = coerce_value(raw, field)
    return data
