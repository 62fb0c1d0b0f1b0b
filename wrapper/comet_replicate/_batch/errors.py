"""The batch engine's own errors: a bad input file, and a journal that cannot be used.

Both are raised before any prediction is created (or, for a journal lost mid-run, stop new work
without losing any id already committed), so the CLI maps them to "input error" (exit 2) or
"API/connection error" (exit 3) as documented.
"""

from __future__ import annotations

from .._errors import CometReplicateError, InputValidationError

__all__ = ["BatchInputError", "JournalError", "LeaseLost", "UnknownOutcome"]


class BatchInputError(InputValidationError):
    """The batch's input is unusable: names the file and the line, and what is wrong with it.

    An input error like any other (found before anything is sent), so callers that handle
    InputValidationError handle it too.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.line = line


class JournalError(CometReplicateError):
    """The journal cannot be opened or written (in use by another batch, corrupt, unreachable).

    Raised before any create when opening; raised mid-run when a write fails, so the engine stops
    claiming new lines (an id already committed is never lost).
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class LeaseLost(JournalError):
    """A worker's claim on a line expired and another worker may have taken the line over.

    ``lines`` names the lines lost, as ``(line_no, digest)``: the engine stops working on those
    (another worker resumes them) and goes on with the rest. Without ``lines`` the worker stops.
    """

    def __init__(
        self, message: str, *, location: str | None = None, lines: tuple[tuple[int, str], ...] = ()
    ) -> None:
        super().__init__(message, location=location)
        self.lines = tuple(lines)


class UnknownOutcome(CometReplicateError):
    """A create was sent but its answer never arrived: a prediction may exist whose id nobody knows.

    The line is reported, never created again unless the caller asks for it explicitly
    (``retry_unknown`` or ``retry_lines``), because creating it again may pay twice.
    """
