"""The two Rich consoles: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

__all__ = ["err_console", "out_console", "print_json"]


def out_console() -> Console:
    """Results (tables, paths): stdout, wide enough that a pipe does not wrap lines mid-path."""
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        # Piped or captured: no terminal width to respect, so keep tables readable.
        console.width = max(console.width, 140)
    return console


def err_console() -> Console:
    """Progress and notices: stderr, so that stdout stays parseable."""
    return Console(file=sys.stderr, highlight=False)


def print_json(document: Any) -> None:
    """One JSON document on stdout (plain ``print``: no Rich markup or wrapping)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()
