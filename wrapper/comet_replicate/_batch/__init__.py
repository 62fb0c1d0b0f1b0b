"""The batch engine: many predictions, bounded concurrency, a journal that survives any crash.

Library code (no Typer, no Rich): the CLI's ``batch`` command is a front-end over it. One job per
module: ``items`` (what to run, identity, shards), ``jsonl`` (reading and checking input files),
``journal`` (the store interface), ``journal_thread`` (journal calls off the event loop), ``sqlite``
(the default store), ``postgres`` (the shared store), ``stores`` (which store a location names),
``plan`` (the resume rules), ``outputs`` and ``remote`` (where files go), ``outcome`` (whether a
failed create made a prediction), ``results`` (what a run reports), ``settings`` (run settings and
bounds), ``line`` (one line's work), ``engine`` (the async runner), ``status`` (progress across
workers), ``setup`` (a batch checked and planned before it runs), ``api`` (the entry points
:class:`AsyncBatch` and :class:`Batch`).
"""

from __future__ import annotations

from .api import AsyncBatch, Batch
from .engine import BatchEngine, untouched
from .errors import BatchInputError, JournalError, LeaseLost
from .items import BatchItem, Shard, input_hash, items_from, parse_shard
from .journal import FINISHED_BAD, Claim, Journal, JournalRow, LineState, RetryPolicy
from .jsonl import MAX_NESTING, parse_jsonl, read_jsonl, validate_items
from .outcome import definitely_not_created
from .outputs import STAGING_DIR, OutputFolder, Outputs, output_target
from .plan import Action, PlanSummary, decide, summarize
from .postgres import PostgresJournal
from .remote import RemoteOutputs, StorageError, read_source
from .results import UNKNOWN_NOTE, BatchProgress, BatchReport, BatchResult, state_label
from .settings import ANSWER_GRACE_S, CANCEL_TIMEOUT_S, EngineSettings, describe_error
from .setup import BATCH_POLL_TUNING, BatchInputs, BatchOptions, BatchSetup
from .sqlite import SCHEMA_VERSION, SQLiteJournal, default_journal_path
from .status import BatchStatus, batch_status
from .stores import JOURNAL_SCHEMES, JournalSpec, open_journal

__all__ = [
    "ANSWER_GRACE_S",
    "BATCH_POLL_TUNING",
    "CANCEL_TIMEOUT_S",
    "FINISHED_BAD",
    "JOURNAL_SCHEMES",
    "MAX_NESTING",
    "SCHEMA_VERSION",
    "STAGING_DIR",
    "UNKNOWN_NOTE",
    "Action",
    "AsyncBatch",
    "Batch",
    "BatchEngine",
    "BatchInputError",
    "BatchInputs",
    "BatchItem",
    "BatchOptions",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "BatchSetup",
    "BatchStatus",
    "Claim",
    "EngineSettings",
    "Journal",
    "JournalError",
    "JournalRow",
    "JournalSpec",
    "LeaseLost",
    "LineState",
    "OutputFolder",
    "Outputs",
    "PlanSummary",
    "PostgresJournal",
    "RemoteOutputs",
    "RetryPolicy",
    "SQLiteJournal",
    "Shard",
    "StorageError",
    "batch_status",
    "decide",
    "default_journal_path",
    "definitely_not_created",
    "describe_error",
    "input_hash",
    "items_from",
    "open_journal",
    "output_target",
    "parse_jsonl",
    "parse_shard",
    "read_jsonl",
    "read_source",
    "state_label",
    "summarize",
    "untouched",
    "validate_items",
]
