"""What a batch works on: one item per input line, with an identity that survives edits of the file.

An item's identity is its *digest*, a hash of the model and the canonical JSON input: it does not
depend on the item's position, so inserting lines above it neither changes its journal row (the
journal re-keys moved rows by digest) nor, with ``shard=(K, N)``, its shard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BatchInputError

__all__ = ["BatchItem", "Shard", "input_hash", "items_from", "parse_shard"]


def input_hash(model: str, value: Mapping[str, Any]) -> str:
    """A stable hash of one line's work: the model and its input as canonical JSON."""
    canonical = json.dumps(
        {"model": model, "input": dict(value)}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BatchItem:
    """One prediction to make: ``model`` on ``input``; ``line`` is its 1-based position in the source.

    ``digest`` (computed) identifies the work itself; the journal keys rows by ``(line, digest)``.
    """

    line: int
    model: str
    input: Mapping[str, Any]
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", input_hash(self.model, self.input))


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: the items whose digest falls in it."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard must be K/N with 1 <= K <= N, not {self.index}/{self.count}")

    def holds(self, item: BatchItem) -> bool:
        """Whether ``item`` belongs to this shard (by its digest, never by its position)."""
        return int(item.digest[:16], 16) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str | tuple[int, int] | Shard | None) -> Shard | None:
    """``"2/4"``, ``(2, 4)`` or a :class:`Shard` → a Shard; ``None`` stays None."""
    if value is None or isinstance(value, Shard):
        return value
    if isinstance(value, str):
        left, slash, right = value.partition("/")
        if not slash or not left.strip().isdigit() or not right.strip().isdigit():
            raise ValueError(f"shard must look like K/N (for example 2/4), not {value!r}")
        return Shard(int(left), int(right))
    index, count = value
    return Shard(int(index), int(count))


def items_from(
    inputs: Iterable[BatchItem | Mapping[str, Any] | tuple[str, Mapping[str, Any]]], model: str | None
) -> list[BatchItem]:
    """Library inputs → items: input dicts (with ``model``), ``(model, input)`` pairs, or items.

    Positions count from 1, like the lines of a JSONL file.
    """
    items: list[BatchItem] = []
    for position, entry in enumerate(inputs, start=1):
        if isinstance(entry, BatchItem):
            items.append(entry)
        elif isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            items.append(BatchItem(position, entry[0], _mapping(entry[1], position)))
        elif model is None:
            raise BatchInputError(
                f"item {position}: no model given (pass model=..., or (model, input) pairs)", line=position
            )
        else:
            items.append(BatchItem(position, model, _mapping(entry, position)))
    lines = [item.line for item in items]
    if len(set(lines)) != len(lines):
        raise BatchInputError("two items share one line number; each item needs its own position")
    return items


def _mapping(value: object, position: int) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BatchInputError(
            f"item {position} must be a mapping of input fields, not {type(value).__name__}", line=position
        )
    return value
