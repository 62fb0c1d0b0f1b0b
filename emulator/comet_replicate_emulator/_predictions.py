"""Predictions and their lifecycle, as a pure function of the emulator clock.

A prediction is fixed at creation (queue time, run time, outcome, deadline); its state at any moment is
computed from those and the time a cancel arrived, so 1,000 pending predictions cost no timers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._images import ImageSpec

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


def iso(ts: float) -> str:
    """RFC 3339 with microseconds and a `Z`, as Replicate writes timestamps."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Prediction:
    """What the emulator decided when the prediction was created."""

    id: str
    model: str
    input: dict[str, Any]
    effective: Mapping[str, Any]  # input with the schema's defaults filled in
    created_at: float
    queue_s: float
    run_s: float
    seed: int
    images: list[ImageSpec]
    output_is_list: bool
    base_url: str
    api_prefix: str
    retention_s: float
    steps: int | None = None
    fail_message: str | None = None
    deadline: float | None = None
    cancel_at: float | None = None
    webhook: str | None = None
    webhook_events: tuple[str, ...] = ()
    _waiters: list[asyncio.Event] = field(default_factory=list, repr=False)

    @property
    def started(self) -> float:
        return self.created_at + self.queue_s

    @property
    def finished(self) -> float:
        return self.started + self.run_s

    async def wait_until(self, when: float, sleep_until: Any) -> None:
        """Sleep until emulator time `when`, or until a cancel changes when this prediction ends."""
        event = asyncio.Event()
        self._waiters.append(event)
        try:
            await sleep_until(when, event)
        finally:
            if event in self._waiters:
                self._waiters.remove(event)

    def notify(self) -> None:
        """Wake every waiter (a cancel arrived); each recomputes when to wake next."""
        for event in self._waiters:
            event.set()
        self._waiters.clear()

    def ending(self) -> tuple[float, str]:
        """When the prediction becomes terminal and with which status (given what is known now)."""
        when, status = self.finished, ("failed" if self.fail_message else "succeeded")
        if self.deadline is not None and self.deadline < when:
            when, status = self.deadline, ("aborted" if self.deadline <= self.started else "canceled")
        if self.cancel_at is not None and self.cancel_at < when:
            when, status = self.cancel_at, "canceled"
        return when, status

    def status_at(self, now: float) -> str:
        end, status = self.ending()
        if now >= end:
            return status
        return "processing" if now >= self.started else "starting"  # mutation-point: status-starting

    def output_urls(self) -> list[str]:
        return [self.file_url(i) for i in range(len(self.images))]

    def file_name(self, index: int) -> str:
        ext = self.images[index].fmt
        return f"out-{index}.{ext}" if self.output_is_list else f"output.{ext}"

    def file_url(self, index: int) -> str:
        return f"{self.base_url}/files/{self.id}/{self.file_name(index)}"

    def data_removed_at(self, now: float) -> bool:
        end, _ = self.ending()
        return now >= end + self.retention_s

    def _logs(self, now: float, end: float, status: str) -> str:
        if (
            now < self.started
            or (status == "aborted")
            or (self.cancel_at is not None and end <= self.started)
        ):
            return ""
        lines = [f"Using seed: {self.seed}"]
        upto = min(now, end)
        fraction = 1.0 if self.run_s <= 0 else max(0.0, min(1.0, (upto - self.started) / self.run_s))
        if self.steps:
            done = int(self.steps * fraction)
            for step in range(done + 1):
                pct = step * 100 // self.steps
                bar = "█" * (pct // 10)
                lines.append(f"{pct:3d}%|{bar:<10}| {step}/{self.steps}")
        else:
            lines.append("Running prediction")
            if fraction >= 1.0:
                lines.append("Prediction complete")
        if status == "succeeded" and now >= end:
            lines.append(f"Generated {len(self.images)} image{'s' if len(self.images) != 1 else ''}")
        return "\n".join(lines) + "\n"

    def view(self, now: float) -> dict[str, Any]:
        """The prediction object as the API returns it at emulator time `now`."""
        end, final = self.ending()
        status = self.status_at(now)
        terminal = status in TERMINAL
        started = self.started if self.started < end and now >= self.started else None
        removed = terminal and self.data_removed_at(now)
        output: Any = None
        if status == "succeeded" and not removed:
            urls = self.output_urls()
            output = urls if self.output_is_list else urls[0]
        api = f"{self.base_url}{self.api_prefix}/predictions/{self.id}"
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": "hidden",
            "input": {} if removed else dict(self.input),
            "logs": "" if removed else self._logs(now, end, final),
            "output": output,
            "data_removed": removed,
            "error": self.fail_message if status == "failed" else None,
            "source": "api",
            "status": status,
            "created_at": iso(self.created_at),  # mutation-point: created-at
            "urls": {
                "get": api,
                "cancel": api + "/cancel",
                "stream": f"{self.base_url}/stream/{self.id}",
                "web": f"{self.base_url}/p/{self.id}",
            },
        }
        if started is not None:
            body["started_at"] = iso(started)
        if self.deadline is not None:
            body["deadline"] = iso(self.deadline)
        if terminal:
            body["completed_at"] = iso(end)
            metrics: dict[str, Any] = {"total_time": round(end - self.created_at, 6)}
            if started is not None:
                metrics["predict_time"] = round(end - started, 6)
            if status == "succeeded":
                metrics["image_count"] = len(self.images)
            body["metrics"] = metrics
        return body
