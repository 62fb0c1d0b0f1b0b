"""The batch engine: many predictions, bounded concurrency, a journal that survives any crash.

Library code (no Typer, no Rich): the CLI's ``batch`` command is a front-end over it. One job per
module: ``items`` (what to run, identity, shards), ``jsonl`` (reading input files), ``journal``
(the store interface), ``sqlite`` (the default store), ``stores`` (which store a location names),
``plan`` (the resume rules), ``outputs`` (the output folder), ``engine`` (the async runner), ``api``
(the public sync and async entry points).
"""

from __future__ import annotations

from .errors import BatchInputError, JournalError, LeaseLost, UnknownOutcome
from .items import BatchItem, Shard, input_hash, parse_shard
from .journal import FINISHED_BAD, Claim, Journal, JournalRow, LineState, RetryPolicy
from .plan import PlanSummary, decide, summarize
from .sqlite import SQLiteJournal, default_journal_path
from .stores import JOURNAL_SCHEMES, open_journal

__all__ = [
    "FINISHED_BAD",
    "JOURNAL_SCHEMES",
    "BatchInputError",
    "BatchItem",
    "Claim",
    "Journal",
    "JournalError",
    "JournalRow",
    "LeaseLost",
    "LineState",
    "PlanSummary",
    "RetryPolicy",
    "SQLiteJournal",
    "Shard",
    "UnknownOutcome",
    "decide",
    "default_journal_path",
    "input_hash",
    "open_journal",
    "parse_shard",
    "summarize",
]
