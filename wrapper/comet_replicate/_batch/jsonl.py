"""Reading a batch's input: JSONL, one input object per line, and checking every line before any request.

A line is a JSON object of input fields, or ``{"input": {...}}``; blank lines are skipped and lines
are numbered as a text editor numbers them (split on ``\\n`` only, so a U+2028 inside a prompt does
not shift the numbering). Whatever a file holds — random bytes, invalid JSON, nesting deep enough
to overflow a parser — the result is one :class:`~.errors.BatchInputError` naming the file and the
line, never a UnicodeDecodeError or RecursionError.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import InputValidationError
from .._inputs import prepare_input, split_model
from .errors import BatchInputError
from .items import BatchItem

__all__ = ["MAX_NESTING", "parse_jsonl", "read_jsonl", "validate_items"]

#: Deepest nesting of arrays and objects accepted in one line. FLUX inputs are flat; the bound keeps
#: hostile files from exhausting the parser's (or the validator's) recursion.
MAX_NESTING = 100
#: Invalid lines listed in one error before "… and N more".
_SHOWN_PROBLEMS = 20


def read_jsonl(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, Any]]]:
    """The inputs of a JSONL file as ``(line number, input)`` pairs."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BatchInputError(f"cannot read {path}: {exc.strerror or exc}", source=str(path)) from None
    return parse_jsonl(data, str(path))


def parse_jsonl(data: bytes, name: str) -> list[tuple[int, dict[str, Any]]]:
    """Parse JSONL bytes; ``name`` (a path or URL) is what errors call the file."""
    lines: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = _decode(raw, name, number)
        if not text.strip():
            continue
        lines.append((number, _parse_line(text, name, number)))
    if not lines:
        raise BatchInputError(f"{name} holds no input lines", source=name)
    return lines


def _decode(raw: bytes, name: str, number: int) -> str:
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte order mark, as some editors write
    try:
        return raw.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise BatchInputError(
            f"{name} line {number} is not UTF-8 text (byte {exc.start + 1} of the line); "
            "a batch file holds one JSON object per line",
            source=name,
            line=number,
        ) from None


def _parse_line(text: str, name: str, number: int) -> dict[str, Any]:
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise BatchInputError(
            f"{name} line {number} nests arrays/objects {depth} deep (at most {MAX_NESTING} allowed)",
            source=name,
            line=number,
        )
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BatchInputError(
            f"{name} line {number} is not valid JSON: {exc}", source=name, line=number
        ) from None
    if isinstance(value, dict) and set(value) == {"input"} and isinstance(value["input"], dict):
        value = value["input"]
    if not isinstance(value, dict):
        raise BatchInputError(
            f"{name} line {number} must be a JSON object, not {type(value).__name__}",
            source=name,
            line=number,
        )
    return value


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text, ignoring brackets inside strings (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
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
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def validate_items(items: Sequence[BatchItem], name: str) -> None:
    """Refuse the whole batch, before any request, when an item's input breaks its model's schema.

    One error lists every invalid line (the first 20), so a file is fixed in one pass. A malformed
    model name raises InputValidationError naming it.
    """
    for model in sorted({item.model for item in items}):
        split_model(model)
    problems = []
    for item in items:
        try:
            prepare_input(item.model, dict(item.input))
        except InputValidationError as exc:
            problems.append(f"{name} line {item.line}: {' '.join(str(exc).split())}")
        except RecursionError:
            problems.append(f"{name} line {item.line}: input nested too deeply")
    if problems:
        shown = problems[:_SHOWN_PROBLEMS]
        if len(problems) > _SHOWN_PROBLEMS:
            shown.append(f"… and {len(problems) - _SHOWN_PROBLEMS} more invalid lines")
        raise BatchInputError(
            f"{len(problems)} invalid input line(s); nothing was sent:\n  " + "\n  ".join(shown), source=name
        )
