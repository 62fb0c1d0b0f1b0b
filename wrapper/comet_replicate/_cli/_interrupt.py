"""Ctrl-C and SIGTERM: stop like a person pressing Ctrl-C, never losing a paid prediction's id.

A create that was sent but whose answer is dropped makes a prediction nobody can cancel or resume.
So the first interrupt during the create is deferred until the id arrives (``created()``), and raised
then; a second one stops at once. SIGTERM (how schedulers, ``timeout`` and ``docker stop`` end a job)
is handled exactly like Ctrl-C, as :class:`Terminated`, and the process then exits 143 instead of 130.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from ._errors import Terminated

__all__ = ["CreateGuard", "create_guard", "interrupt_name", "terminate_as_interrupt"]

_HANDLED = (signal.SIGINT, signal.SIGTERM)


def _interrupt_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def interrupt_name(exc: BaseException) -> str:
    """``SIGTERM`` or ``Ctrl-C``: what stopped the command, for its messages."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


class CreateGuard:
    """Defers the first SIGINT or SIGTERM while ``creating`` is true."""

    def __init__(self) -> None:
        self.creating = True
        self.pending: int | None = None  # the deferred signal, if any

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.creating and self.pending is None:
            self.pending = signum
            name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
            again = "send SIGTERM" if signum == signal.SIGTERM else "press Ctrl-C"
            sys.stderr.write(
                f"\n{name}: waiting for the create request to answer so that its prediction can be "
                f"canceled ({again} again to stop at once)\n"
            )
            sys.stderr.flush()
            return
        raise _interrupt_for(signum)

    def created(self, *, finished: bool = False) -> None:
        """The create answered: raise the deferred interrupt now, if there was one.

        When the answer is already final (a sync-mode create that ran to the end) there is nothing
        to cancel: the interrupt stays pending for the caller to raise once the call returns, so the
        client does not send a pointless cancel.
        """
        self.creating = False
        if self.pending is not None and not finished:
            raise _interrupt_for(self.pending)

    def interrupt(self) -> KeyboardInterrupt:
        """The deferred interrupt as an exception (the create failed before answering)."""
        return _interrupt_for(self.pending if self.pending is not None else signal.SIGINT)


@contextmanager
def _handlers(handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    """Install ``handler`` for SIGINT and SIGTERM for the block (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in _HANDLED}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def create_guard() -> Iterator[CreateGuard]:
    """Install the deferring handler for the block."""
    guard = CreateGuard()
    with _handlers(guard.handler):
        yield guard


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise _interrupt_for(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """For the block, SIGTERM raises :class:`Terminated` where it arrives, like Ctrl-C."""
    with _handlers(_raise_interrupt):
        yield
