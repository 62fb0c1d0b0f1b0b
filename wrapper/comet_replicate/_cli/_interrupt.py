"""Ctrl-C while a create request is in flight: wait for its answer so the prediction can be named.

A create that was sent but whose answer is dropped makes a prediction nobody can cancel or resume.
So the first Ctrl-C during the create is deferred until the id arrives (``created()``), and raised
then; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["CreateGuard", "create_guard"]


class CreateGuard:
    """Defers the first SIGINT while ``creating`` is true."""

    def __init__(self) -> None:
        self.creating = True
        self.pending = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.creating and not self.pending:
            self.pending = True
            sys.stderr.write(
                "\nCtrl-C: waiting for the create request to answer so that its prediction can be "
                "canceled (press Ctrl-C again to stop at once)\n"
            )
            sys.stderr.flush()
            return
        raise KeyboardInterrupt

    def created(self) -> None:
        """The create answered: raise the deferred Ctrl-C now, if there was one."""
        self.creating = False
        if self.pending:
            raise KeyboardInterrupt


@contextmanager
def create_guard() -> Iterator[CreateGuard]:
    """Install the deferring SIGINT handler for the block (only possible in the main thread)."""
    guard = CreateGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    previous = signal.signal(signal.SIGINT, guard.handler)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGINT, previous)
