"""Which journal a location names: a :class:`~.journal.Journal`, a SQLite path, or a database URL.

URL schemes map to the module that implements them, imported on first use so a database driver
loads only for users who ask for it. A store for another scheme registers here (one line).
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

from .errors import JournalError
from .items import Shard
from .journal import Journal
from .sqlite import SQLiteJournal, default_journal_path

__all__ = ["JOURNAL_SCHEMES", "JournalSpec", "open_journal"]

#: ``scheme`` → ``(module relative to this package, class name)``; the class is built as
#: ``cls(url, source=..., shard=..., worker_id=...)``.
JOURNAL_SCHEMES: dict[str, tuple[str, str]] = {
    "postgresql": (".postgres", "PostgresJournal"),
    "postgres": (".postgres", "PostgresJournal"),
}

JournalSpec = Journal | str | os.PathLike[str] | None


def open_journal(
    journal: JournalSpec,
    *,
    source: str | os.PathLike[str],
    shard: Shard | None = None,
    worker_id: str | None = None,
) -> Journal:
    """The journal ``journal`` names; None: ``<source>.journal.sqlite`` next to the source file."""
    if isinstance(journal, Journal):
        return journal
    if journal is None:
        return SQLiteJournal(
            default_journal_path(Path(source), shard), source, shard=shard, worker_id=worker_id
        )
    text = os.fspath(journal)
    scheme, sep, _ = text.partition("://")
    if sep and len(scheme) > 1:  # "C://x" is a Windows drive, not a scheme
        base = scheme.split("+", 1)[0].lower()
        if base not in JOURNAL_SCHEMES:
            known = ", ".join(sorted(JOURNAL_SCHEMES)) or "none"
            raise JournalError(
                f"unknown journal scheme {scheme!r} (a SQLite file path, or a URL of: {known})"
            )
        module, name = JOURNAL_SCHEMES[base]
        cls: Any = getattr(import_module(module, __package__), name)
        store: Journal = cls(text, source=os.fspath(source), shard=shard, worker_id=worker_id)
        return store
    return SQLiteJournal(text, source, shard=shard, worker_id=worker_id)
