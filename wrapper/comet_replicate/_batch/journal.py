"""The journal interface: durable per-line state that makes a batch safe to re-run after any crash.

One interface, several stores: :class:`~comet_replicate._batch.sqlite.SQLiteJournal` (one machine,
the default) and a PostgreSQL journal (many workers; claims with leases). The engine only ever talks
to :class:`Journal`, and every implementation keeps the same write ordering, which is what makes a
paid prediction impossible to lose or to pay twice:

1. :meth:`Journal.mark_creating` is committed durably *before* the create request is sent;
2. :meth:`Journal.mark_created` commits the prediction id the moment the create answers, before any
   waiting;
3. :meth:`Journal.mark_finished` commits the final state (and the saved outputs) when the line ends.

Steps 1 and 2 are durable on return, even against a power cut. Step 3 (and :meth:`Journal.note`)
must survive the worker's death; a store may let a crash of the machine or of the database server
undo it until its next durable write, since the line then reads ``created`` with its id and is waited
for by id again (see :data:`REREAD_BY_ID`; ``interrupted`` is durable like steps 1 and 2).

A row left in ``creating`` means a worker died between sending a create and reading its answer: the
prediction may exist and nobody knows its id, so it is reported as unknown and never created again
unless the caller says so (:class:`RetryPolicy`).

Lines are handed to workers by :meth:`Journal.claim`. With an exclusive store (SQLite: one batch per
journal file, enforced by a lock) a claim always succeeds and never expires. With a shared store a
claim is atomic (no two live workers hold one line) and carries a lease of :attr:`lease_seconds`
that the engine renews; a line whose worker died is claimed again by another worker — resumed by id
when its id was committed, reported unknown when it was ``creating``.

Every method commits before returning — or, inside :meth:`Journal.group`, when the group ends — and
is called from one thread, one call at a time. A store that cannot be written raises
:class:`~.errors.JournalError`; the engine then stops claiming and reports the lines it held.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from .items import BatchItem

__all__ = [
    "FINISHED_BAD",
    "REREAD_BY_ID",
    "Claim",
    "Journal",
    "JournalRow",
    "LineState",
    "RetryPolicy",
]


class LineState(StrEnum):
    """A line's state in the journal (stored as its string value)."""

    #: Known to the journal, nothing sent yet (shared stores register every line up front).
    PENDING = "pending"
    #: A create is about to be sent or was sent; no answer recorded. Unknown if nobody holds it.
    CREATING = "creating"
    #: The create answered: the id is known, the prediction is not finished (resumed by id).
    CREATED = "created"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ABORTED = "aborted"
    #: The server refused the create or it never left this machine: no prediction exists.
    NOT_CREATED = "not_created"
    #: Canceled on the user's interrupt: created again on the next run (old id in ``previous_ids``).
    INTERRUPTED = "interrupted"


#: Final states of a prediction that did not succeed (created again only with ``retry_failed``).
FINISHED_BAD: tuple[str, ...] = (LineState.FAILED, LineState.CANCELED, LineState.ABORTED)
#: Final states a re-run finds again by the prediction's id, so a store may commit them without
#: waiting for its disk (see the module docstring); ``interrupted`` is the user's stop, not the server's.
REREAD_BY_ID: frozenset[str] = frozenset((LineState.SUCCEEDED, *FINISHED_BAD))


@dataclass(frozen=True)
class JournalRow:
    """One line's recorded progress."""

    line_no: int
    state: str
    prediction_id: str | None
    status: str | None
    error: str | None
    outputs: list[str]
    creates: int
    previous_ids: list[str]
    digest: str = ""
    #: The worker that holds (or last held) the line, for progress views across workers.
    worker: str | None = None
    #: When the last create was about to be sent (epoch seconds; None if never or not recorded):
    #: an unknown line's prediction, if it exists, was created after this.
    sent_at: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Which lines that ended badly a run creates again (each may pay again; the default is none).

    ``retry_failed``: lines whose prediction failed, was canceled or aborted. ``retry_unknown``: lines
    whose create never answered (they may exist already). ``retry_lines``: those unknown lines only,
    by line number, once the caller checked that their prediction does not exist.
    """

    retry_failed: bool = False
    retry_unknown: bool = False
    retry_lines: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Claim:
    """A line handed to this worker: create it, or resume ``prediction_id``."""

    line_no: int
    digest: str
    action: Literal["create", "resume"]
    prediction_id: str | None = None


class Journal(ABC):
    """Durable per-line state of one batch, shared by the workers that run it.

    Lines are named by ``(line_no, digest)`` (see :class:`~.items.BatchItem`).
    """

    #: Where the journal lives, for messages (a path, or a URL without its password).
    location: str
    #: This worker's id (recorded with its claims; shown by progress views).
    worker_id: str
    #: How long a claim lasts without renewal, or None when claims never expire (exclusive stores).
    lease_seconds: float | None = None

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Commit the writes made inside as one: durable together when the block ends, none of them
        if it raises (a write that raised inside leaves nothing, the others still commit). Nothing
        made inside may be acted on before the block ended. A store that cannot group (the default)
        commits each write on its own, which keeps the same guarantees."""
        yield

    @abstractmethod
    def prepare(self, items: Sequence[BatchItem]) -> None:
        """Make the journal ready for ``items``: re-key rows whose input moved to another line (found
        by digest, so an edit above a line never pays twice); shared stores also register each line."""

    @abstractmethod
    def rows(self) -> list[JournalRow]:
        """Every row of this batch, by line number (for plans, reports and tests)."""

    @abstractmethod
    def claim(self, limit: int, policy: RetryPolicy) -> list[Claim]:
        """Take up to ``limit`` lines that need work under ``policy`` (see :func:`~.plan.decide`).

        Never returns a line this worker already claimed since :meth:`prepare`, nor one another live
        worker holds. An empty list means no more work for this worker.
        """

    def wait_hint(self) -> float | None:
        """After :meth:`claim` gave nothing: seconds to wait before asking again, because lines other
        workers hold may come free (a dead worker's lease runs out); None when nothing is left for
        this worker. Exclusive stores have no other workers: None."""
        return None

    @abstractmethod
    def renew(self, lines: Sequence[tuple[int, str]]) -> None:
        """Extend the leases of the claimed lines ``(line_no, digest)``; raises LeaseLost if one expired."""

    @abstractmethod
    def release(self, lines: Sequence[tuple[int, str]]) -> None:
        """Give claimed lines back unfinished (the run stops); their rows keep their state."""

    @abstractmethod
    def mark_creating(self, line_no: int, digest: str, model: str) -> None:
        """Record that a create is about to be sent; committed durably before it is.

        A line created before keeps its old id in ``previous_ids``; ``creates`` counts the creates sent.
        """

    @abstractmethod
    def mark_created(self, line_no: int, digest: str, prediction_id: str, status: str | None) -> None:
        """Record the prediction id, the moment the create's answer is read."""

    @abstractmethod
    def mark_not_created(self, line_no: int, digest: str, error: str) -> None:
        """The create was refused or never left this machine: no prediction exists for the line."""

    @abstractmethod
    def note(self, line_no: int, digest: str, *, status: str | None = None, error: str | None = None) -> None:
        """Update the last status seen or the last error, keeping the line's state."""

    @abstractmethod
    def mark_finished(
        self,
        line_no: int,
        digest: str,
        state: str,
        *,
        status: str | None,
        error: str | None = None,
        outputs: Sequence[str] = (),
    ) -> None:
        """Record a line's final state (``succeeded`` with its saved outputs, one of FINISHED_BAD, or
        ``interrupted``) and release its claim."""

    @abstractmethod
    def close(self) -> None:
        """Release every claim still held and the store's resources (idempotent)."""

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
