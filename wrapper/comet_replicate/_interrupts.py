"""Holding back Ctrl-C while a create that may already have been made is answered.

`run` holds its create open (`Prefer: wait`) for most of a generation. A KeyboardInterrupt raised in
the middle of that read would throw away the only copy of the prediction's id while the server goes
on and bills it. `DeferredInterrupt` lets the read finish: the first Ctrl-C is recorded (and said so
in the log) and delivered once the answer is in; a second Ctrl-C abandons the read at once. It only
acts in the main thread and only when SIGINT has Python's default handler — an application (or the
CLI) with a handler of its own keeps it.

`signal` is imported by the first guarded create, not with the client: building its enums of every
signal number costs more than any other module the import of `Client` adds.
"""

from __future__ import annotations

import logging
import threading
from types import FrameType, TracebackType
from typing import Any

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
            import signal  # the first create's, not the import's, cost (see the module's doc)

            previous = signal.getsignal(signal.SIGINT)
            if previous is signal.default_int_handler:
                self._previous = previous
                signal.signal(signal.SIGINT, self)
                self._active = True
        return self

    def __repr__(self) -> str:
        # `signal` tries (and fails) to turn every handler it hands back into an enum member, and
        # formats the handler's repr for the error it then drops: keep that repr cheap.
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
            import signal  # loaded by __enter__ already

            signal.signal(signal.SIGINT, self._previous)
            self._active = False
