"""The two Rich consoles: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console

from ._errors import redact

__all__ = ["err_console", "out_console", "plural", "print_json"]


def out_console() -> Console:
    """Results (tables, paths): stdout, wide enough that a pipe does not wrap lines mid-path.

    An explicit ``COLUMNS`` is always honoured (a terminal of that width, or a user asking for it);
    only a pipe with no width given is widened.
    """
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        # Piped or captured with no width given: keep tables readable rather than 80 wide.
        console.width = max(console.width, 140)
    return console


def err_console() -> Console:
    """Progress and notices: stderr, so that stdout stays parseable."""
    return Console(file=sys.stderr, highlight=False)


def print_json(document: Any) -> None:
    """One JSON document on stdout (plain ``print``: no Rich markup or wrapping).

    Server text (logs, errors) is in it, and a server may echo the key: the key is redacted.
    """
    sys.stdout.write(redact(json.dumps(document, indent=2, default=str)) + "\n")
    sys.stdout.flush()


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 recording``, ``3 recordings``: a count with its noun in the right number."""
    noun = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count:,} {noun}"
