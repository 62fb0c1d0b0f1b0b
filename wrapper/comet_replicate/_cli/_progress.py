"""The live display of one prediction: status, elapsed time, polls and the last log line.

It is driven only by the wrapper's ``on_created``/``on_update`` callbacks, so what it shows is what
the client saw; the elapsed time is computed at each refresh.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ._errors import redact

__all__ = ["PredictionProgress", "last_log_line", "status_text"]

_STYLES = {
    "starting": "yellow",
    "processing": "cyan",
    "succeeded": "green",
    "failed": "red",
    "canceled": "magenta",
    "aborted": "magenta",
}


def status_text(prediction: Any) -> str:
    """The status as plain text (a known enum member or a string the contract does not list)."""
    status = getattr(prediction, "status", None)
    return str(getattr(status, "value", status) or "unknown")


def last_log_line(prediction: Any) -> str:
    """The last non-empty line of the prediction's logs, or ``""`` (the key redacted if echoed)."""
    logs = getattr(prediction, "logs", None)
    if not isinstance(logs, str):
        return ""
    lines = [line.strip() for line in logs.splitlines() if line.strip()]
    return redact(lines[-1]) if lines else ""


class PredictionProgress:
    """State of one prediction as the callbacks report it, renderable by Rich."""

    def __init__(self, model: str | None, *, prediction_id: str | None = None) -> None:
        self.model = model
        self.prediction_id = prediction_id
        self.prediction: Any = None
        self.status = "creating" if prediction_id is None else "waiting"
        self.polls = 0
        self.log_line = ""
        self.note = ""
        self.started = time.monotonic()
        self.finished: float | None = None
        self._spinner = Spinner("dots", style="cyan")

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def on_created(self, prediction: Any) -> None:
        """Wrapper callback: the create answered (the id exists from now on)."""
        self.prediction = prediction
        self.prediction_id = str(prediction.id)
        self.model = self.model or str(prediction.model)
        self.status = status_text(prediction)
        self.log_line = last_log_line(prediction) or self.log_line

    def on_poll(self) -> None:
        """One poll request sent (the wrapper reports only changes through ``on_update``)."""
        self.polls += 1

    def on_update(self, prediction: Any) -> None:
        """Wrapper callback: a poll saw the prediction change."""
        self.prediction = prediction
        self.prediction_id = str(getattr(prediction, "id", self.prediction_id))
        if self.model is None:
            self.model = str(getattr(prediction, "model", "")) or None
        self.status = status_text(prediction)
        self.log_line = last_log_line(prediction) or self.log_line

    def finish(self, note: str = "") -> None:
        """Freeze the clock; ``note`` (an error or "interrupted") is shown under the status."""
        if self.finished is None:
            self.finished = time.monotonic()
        self.note = note

    def __rich__(self) -> RenderableType:
        style = _STYLES.get(self.status, "white")
        if self.finished is None:
            marker: RenderableType = self._spinner
        else:
            marker = Text("✔" if self.status == "succeeded" else "✘", style=style)
        line = Table.grid(padding=(0, 1))
        for _ in range(5):
            line.add_column(no_wrap=True)
        line.add_row(
            marker,
            Text(self.model or "prediction", style="bold"),
            Text(self.status, style=style),
            Text(f"{self.elapsed:.1f}s"),
            Text(f"{self.polls} poll{'' if self.polls == 1 else 's'}"),
        )
        detail = Text(f"  id {self.prediction_id or '(not created yet)'}", style="dim")
        if self.log_line:
            detail.append(f" · log: {self.log_line}")
        detail.no_wrap = True
        detail.overflow = "ellipsis"
        parts: list[RenderableType] = [line, detail]
        if self.note:
            parts.append(Text(f"  {self.note}", style=style))
        return Group(*parts)

    @contextmanager
    def live(self, console: Console) -> Iterator[PredictionProgress]:
        """Show the display on ``console`` (stderr) while the block runs; the final frame stays."""
        try:
            with Live(self, console=console, refresh_per_second=8, transient=False):
                try:
                    yield self
                finally:
                    self.finish(self.note)
        finally:
            if not console.is_terminal:
                console.line()  # Live ends its last frame with a newline only on a terminal
