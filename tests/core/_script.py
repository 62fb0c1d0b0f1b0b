"""Drive core flows by hand: scripted answers for each request, a fake clock, recorded effects.

`Script` plays the part of a driver. Each `Http` or `Fetch` effect takes the next scripted answer
(a `Reply`/`Fetched` to send back, an exception to throw in, or a callable computing either from
the effect); `Sleep` advances the fake clock; `Notify` calls the callback. Nothing sleeps and no
socket is opened, so every branch of the retry and wait logic runs deterministically.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from comet_replicate.core.effects import Fetch, Fetched, Flow, Http, Notify, Reply, Sleep
from comet_replicate.core.state import Config, Shared, State, as_timeout

T = TypeVar("T")
BASE = "https://api.test/replicate/v1"
KEY = "sk-core-test-key"
MODEL = "black-forest-labs/flux-schnell"
CREATED_AT = "2026-03-12T11:27:18.258Z"
CREATED_EPOCH = 1_773_314_838.258

Answer = Reply | Fetched | BaseException | Callable[[Any], "Reply | Fetched | BaseException"]


class FakeClock:
    """Monotonic and wall time that move only when a flow sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return CREATED_EPOCH + (self.now - 1000.0)


def prediction(
    status: str = "starting", *, id: str = "p1", output: Any = None, **extra: Any
) -> dict[str, Any]:
    """A Prediction body as openapi.yaml describes it."""
    body: dict[str, Any] = {
        "id": id,
        "model": MODEL,
        "version": "hidden",
        "input": {"prompt": "boat"},
        "logs": "",
        "output": output,
        "error": None,
        "status": status,
        "created_at": CREATED_AT,
        "urls": {
            "get": f"https://api.replicate.com/v1/predictions/{id}",
            "cancel": f"https://api.replicate.com/v1/predictions/{id}/cancel",
        },
    }
    body.update(extra)
    return body


def reply(
    status: int = 200, body: Any = None, *, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> Reply:
    """A reply with a JSON body (or `raw` bytes)."""
    content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return Reply(status, httpx.Headers(headers or {"content-type": "application/json"}), content)


def done(id: str = "p1") -> Reply:
    return reply(200, prediction("succeeded", id=id, output=[f"https://delivery.test/{id}/out-0.webp"]))


def make_state(clock: FakeClock | None = None, **config: Any) -> State:
    """A client's state with a fixed key, the fake clock and a seeded random source."""
    clock = clock or FakeClock()
    headers = httpx.Headers({"Authorization": f"Bearer {KEY}"})
    options: dict[str, Any] = {
        "base_url": BASE,
        "auth": lambda: headers,
        "timeout": as_timeout(60),
        "max_retries": 2,
    }
    options.update(config)
    shared = Shared(clock=clock.monotonic, wall_clock=clock.wall, rng=random.Random(0))
    return State(Config(**options), shared)


@dataclass
class Script:
    """A driver that answers from a script and records every effect."""

    answers: list[Answer]
    clock: FakeClock = field(default_factory=FakeClock)
    requests: list[Http] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    notified: list[tuple[Callable[..., object], Any]] = field(default_factory=list)
    advance_on_sleep: bool = True
    interrupt_on_sleep: BaseException | None = None

    @classmethod
    def of(cls, *answers: Answer, clock: FakeClock | None = None) -> Script:
        return cls(list(answers), clock or FakeClock())

    def state(self, **config: Any) -> State:
        return make_state(self.clock, **config)

    def _answer(self, effect: Any) -> Any:
        assert self.answers, f"the flow sent {effect!r} but the script has no answer left"
        answer = self.answers.pop(0)
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(effect)
        return answer

    def run(self, flow: Flow[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value = error = None
            if isinstance(effect, Http | Fetch):
                (self.requests if isinstance(effect, Http) else self.fetches).append(effect)  # type: ignore[arg-type]
                answer = self._answer(effect)
                if isinstance(answer, BaseException):
                    error = answer
                else:
                    value = answer
            elif isinstance(effect, Sleep):
                self.sleeps.append(effect.seconds)
                if self.interrupt_on_sleep is not None:
                    error, self.interrupt_on_sleep = self.interrupt_on_sleep, None
                elif self.advance_on_sleep:
                    self.clock.now += effect.seconds
            elif isinstance(effect, Notify):
                self.notified.append((effect.callback, effect.prediction))
                try:
                    effect.callback(effect.prediction)
                except BaseException as exc:
                    error = exc
            else:  # pragma: no cover
                raise AssertionError(f"unknown effect {effect!r}")

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.removeprefix(BASE)}" for r in self.requests]


def transport_error(cls: type[httpx.TransportError], message: str = "boom") -> httpx.TransportError:
    return cls(message)


def every(items: Iterable[Answer]) -> list[Answer]:
    return list(items)
