"""Counters a test can assert on: requests by operation and status, predictions created, faults, 429s."""

from __future__ import annotations

import copy
import threading
from collections import Counter, defaultdict
from typing import Any

MAX_EVENTS = 10_000


class Stats:
    """Thread-safe counters (the server runs in its own thread; tests read from theirs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._created: list[str] = []
            self._faults: Counter[str] = Counter()
            self._fault_timing: Counter[str] = Counter()
            self._fault_events: list[dict[str, Any]] = []
            self._violations: list[str] = []
            self._webhooks: Counter[str] = Counter()
            self._throttled: Counter[str] = Counter()

    def request(self, operation: str, status: int | str) -> None:
        """Count one answered request; every 429 is also counted under `throttled` by operation."""
        with self._lock:
            self._requests[operation][str(status)] += 1
            if status == 429:
                self._throttled[operation] += 1

    def created(self, prediction_id: str) -> None:
        with self._lock:
            self._created.append(prediction_id)

    def fault(self, kind: str, operation: str, when: str, prediction_id: str | None = None) -> None:
        """Count one injected fault.

        `when` is "before" or "after" the operation took effect; a `failed` prediction is recorded
        with operation "prediction" and when "outcome", since its answer reached the client.
        """
        with self._lock:
            self._faults[kind] += 1
            self._fault_timing[f"{operation}_{when}"] += 1
            if len(self._fault_events) < MAX_EVENTS:
                self._fault_events.append(
                    {"kind": kind, "operation": operation, "when": when, "prediction_id": prediction_id}
                )

    def webhook(self, event: str, delivered: bool) -> None:
        with self._lock:
            self._webhooks[f"{event}_{'delivered' if delivered else 'failed'}"] += 1

    def violation(self, message: str) -> None:
        with self._lock:
            self._violations.append(message)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "requests": {op: dict(counts) for op, counts in self._requests.items()},
                    "requests_total": sum(sum(c.values()) for c in self._requests.values()),
                    "predictions_created": len(self._created),
                    "prediction_ids": list(self._created),
                    "faults": {
                        "total": sum(self._faults.values()),
                        "by_kind": dict(self._faults),
                        "by_timing": dict(self._fault_timing),
                        "events": list(self._fault_events),
                    },
                    "webhooks": dict(self._webhooks),
                    "throttled": dict(self._throttled),
                    "throttled_total": sum(self._throttled.values()),
                    "response_violations": list(self._violations),
                }
            )
