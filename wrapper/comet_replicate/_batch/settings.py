"""How a batch run works: its settings, its time bounds, and how errors are worded (one place)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .._errors import CometReplicateError
from .journal import RetryPolicy

__all__ = [
    "ANSWER_GRACE_S",
    "CANCEL_TIMEOUT_S",
    "DOWNLOADS_AT_ONCE",
    "HELD_LOOKUPS",
    "HELD_LOOKUP_GAP_S",
    "MIN_WAIT_S",
    "EngineSettings",
    "describe_error",
]

#: How long a create in flight when the run stops may take to answer (its id is then known).
ANSWER_GRACE_S = 15.0
#: Lines downloading their outputs at once. More would queue inside httpx's pool, whose every
#: acquire and release walks all its waiting requests and connections (quadratic when hundreds of
#: predictions of a held window finish together). Even within this bound its walk grows with the
#: connections kept open: a small image cost 2.4 ms of client CPU at 16 at once, 1.8 ms at 8 and
#: 1.45 ms at 4 (loopback). 8 streams of ~0.3 s each still save ~25 outputs a second, more than
#: twice what the create limit (600 a minute) can produce.
DOWNLOADS_AT_ONCE = 8
#: Held creates looked for through the list route at once when the run stops during their hold.
HELD_LOOKUPS = 4
#: Seconds between two lookups of one held create after a stop (it may not be listed yet).
HELD_LOOKUP_GAP_S = 1.0
#: Bound of each best-effort cancel sent when the run stops.
CANCEL_TIMEOUT_S = 15.0
#: A deadline already passed still lets the wait look once (a finished prediction is not lost).
MIN_WAIT_S = 0.001


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong and, when a prediction exists, its id."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    prediction_id = getattr(exc, "prediction_id", None)
    if prediction_id and str(prediction_id) not in message:
        message = f"{message} (prediction {prediction_id})"
    if not isinstance(exc, CometReplicateError):
        message = f"{type(exc).__name__}: {message}"
    return message


@dataclass(frozen=True)
class EngineSettings:
    """Lines at a time, each line's deadline (None: none), sync-mode seconds per held create (None:
    none held) and the lines never held,
    which badly ended lines to create again, and how errors are worded in the journal and results."""

    concurrency: int = 4
    timeout: float | None = 300.0
    wait: int | None = None
    #: Digests of lines whose creates are never held: a held create lost to a crash is found again
    #: by model and input, and identical lines could not be told apart.
    never_held: frozenset[str] = frozenset()
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    describe: Callable[[BaseException], str] = describe_error
