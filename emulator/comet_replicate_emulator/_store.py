"""The predictions the emulator holds, in creation order, with the token that created each."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from ._predictions import Prediction


@dataclass(frozen=True)
class Entry:
    """A stored prediction: `seq` orders creations (ids are random), `owner` is the caller's token."""

    seq: int
    prediction: Prediction
    owner: str | None


class PredictionStore:
    """Predictions by id, plus their creation order for the list route."""

    def __init__(self) -> None:
        self._by_id: dict[str, Entry] = {}
        self._order: list[Entry] = []
        self._next_seq = 0

    def add(self, prediction: Prediction, owner: str | None) -> None:
        entry = Entry(self._next_seq, prediction, owner)
        self._next_seq += 1
        self._by_id[prediction.id] = entry
        self._order.append(entry)

    def get(self, prediction_id: str) -> Prediction | None:
        entry = self._by_id.get(prediction_id)
        return entry.prediction if entry is not None else None

    def __contains__(self, prediction_id: object) -> bool:
        return prediction_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Prediction]:
        return (entry.prediction for entry in self._order)

    def clear(self) -> None:
        self._by_id.clear()
        self._order.clear()

    def older_than(self, seq: int | None) -> Iterator[Entry]:
        """Entries created before `seq` (all when None), newest first."""
        end = len(self._order) if seq is None else bisect.bisect_left(self._order, seq, key=_seq)
        return (self._order[i] for i in range(end - 1, -1, -1))

    def newer_than(self, seq: int) -> Iterator[Entry]:
        """Entries created after `seq`, oldest first."""
        start = bisect.bisect_right(self._order, seq, key=_seq)
        return (self._order[i] for i in range(start, len(self._order)))


def _seq(entry: Entry) -> int:
    return entry.seq
