"""Holding back Ctrl-C while a create that may already have been made is answered.

`run` holds its create open (`Prefer: wait`) for most of a generation. A KeyboardInterrupt raised in
the middle of that read would throw away the only copy of the prediction's id while the server goes
on and bills it. `DeferredInterrupt` lets the read finish: the first Ctrl-C is recorded (and said so
in the log) and delivered once the answer is in; a second Ctrl-C abandons the read at once. It only
acts in the main thread and only when SIGINT has Python's default handler — an application (or the
CLI) with a handler of its own keeps it.

The handler is read and swapped with the interpreter's own C functions (`_signal`, CPython's module
that `signal` wraps and re-exports): the `signal.getsignal` / `signal.signal` wrappers turn every
handler into a `signal.Handlers` member when they can, which for a function or object means raising
and catching a TypeError and a ValueError, messages formatted, on every call — about 80,000
instructions per guarded create (callgrind) against 3,000 for the calls themselves, the largest
single cost a create added over a bare httpx request. The same calls with the same arguments hand
back the same handler objects (never converted to enum members, which the guard compares by identity
anyway). `_signal` is loaded with the interpreter, so this imports nothing; without it (not CPython)
the guard uses the public wrappers, and `signal`'s enums of every signal number are built then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

try:
    import _signal as _native  # type: ignore[import-not-found]  # no stub: typed by the names below
except ImportError:  # pragma: no cover - CPython has it: the public wrappers do the same, slower
    import signal as _native

_SIGINT: int = int(_native.SIGINT)
_DEFAULT_INT_HANDLER: object = _native.default_int_handler
_getsignal: Callable[[int], object] = _native.getsignal
_setsignal: Callable[[int, Any], object] = _native.signal

__all__ = ["DeferredInterrupt"]

log = logging.getLogger("comet_replicate")


class DeferredInterrupt:
    """A context in which the first SIGINT is recorded as `caught` instead of raised."""

    __slots__ = ("_active", "_previous", "caught")

    def __init__(self) -> None:
        self.caught: KeyboardInterrupt | None = None
        self._previous: Any = None
        self._active = False

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = _getsignal(_SIGINT)
            if previous is _DEFAULT_INT_HANDLER:
                self._previous = previous
                _setsignal(_SIGINT, self)
                self._active = True
        return self

    def __repr__(self) -> str:
        # The public `signal` wrappers (the fallback) try, and fail, to turn every handler they hand
        # back into an enum member, formatting its repr for the error they drop: keep it cheap.
        return "DeferredInterrupt()"

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        """The SIGINT handler while active."""
        if self.caught is not None:
            raise KeyboardInterrupt  # the second Ctrl-C: abandon the read
        self.caught = KeyboardInterrupt()
        log.warning(
            "interrupted while a create is answered: finishing the read so the prediction's id is not "
            "lost (it is canceled next); interrupt again to abandon it"
        )

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._active:
            _setsignal(_SIGINT, self._previous)
            self._active = False
