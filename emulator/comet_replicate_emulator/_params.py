"""Request parameters: checked against the spec's parameter schemas, and the two headers' values read.

The spec's patterns decide what is valid; this module only turns a valid value into seconds.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from ._operations import Operation
from ._spec import Spec

# A century: `Cancel-After` admits any number of digits, a deadline must stay a date.
MAX_CANCEL_AFTER_S = 100 * 365.25 * 86400
_NUMBER = r"\d+(?:\.\d+)?"
_SECONDS = re.compile(rf"^{_NUMBER}$")
_DURATION = re.compile(rf"^(?:({_NUMBER})h)?(?:({_NUMBER})m)?(?:({_NUMBER})s)?$")


def parse_cancel_after(value: str) -> float:
    """Seconds in a `Cancel-After` value, in Replicate's documented form: a number of seconds
    (`90`), or a duration with `h`, `m` and `s` units (`90s`, `5m`, `1h30m45s`).

    The spec sets no pattern (Replicate documents none), so the emulator reads the value itself;
    fractions are accepted, as nothing says they are not. Raises ValueError for anything else.
    """
    text = value.strip()
    if _SECONDS.match(text):
        return float(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"not a duration: {value!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_prefer_wait(value: str) -> float:
    """Seconds in a `Prefer: wait[=N]` value; bare `wait` means 60, as Replicate documents."""
    _, _, number = value.partition("=")
    return float(number) if number else 60.0


def _value(request: Request, where: str, name: str) -> Any:
    if where == "path":
        return request.path_params.get(name)
    if where == "header":
        return request.headers.get(name)
    if where == "query":
        return request.query_params.get(name)
    return None  # pragma: no cover - the spec has no cookie parameters


def parameter_problem(spec: Spec, operation: Operation, request: Request) -> tuple[str, str] | None:
    """The first path, header or query parameter that breaks the spec, as (location, name)."""
    for param, pointer in spec.parameters(operation.template, operation.method):
        name, where = param["name"], param["in"]
        value = _value(request, where, name)
        if value is None:
            if param.get("required"):
                return where, name
            continue
        if not spec.validator(pointer).is_valid(value):
            return where, name
    return None
