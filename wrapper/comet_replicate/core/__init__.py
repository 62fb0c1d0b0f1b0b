"""The sans-IO core: every decision of the client, as generators of effects.

Nothing in this package does I/O, sleeps, reads the real clock or opens an httpx client. A flow
yields effects (`Http`, `Sleep`, `Notify`, `Fetch`); a driver in `comet_replicate._drivers`
performs each one and sends the result back (or throws the exception in). Every bound a request
needs (its timeout phases, its total time, its body cap) is a field of its effect, so the sync and
the async driver honour it the same way. The clock and the random source come in through
`state.Shared`, so tests run every flow on a fake clock.

Modules, in the order a request passes through them: `effects` (the vocabulary), `state`
(configuration and learned state), `retry` (retry rules, Retry-After, deadlines), `status`
(what a prediction status means), `parse` (2xx bodies to `Prediction`), `request` (the one retry
loop), `operations` (create/get/cancel), `schedule` (when to poll), `wait` (wait and run),
`download` (output files).

Records (effects, `Config`, `State`, `Deadline`, `PollTuning`, `RateLimit` ...) are NamedTuples, not
frozen dataclasses: as immutable, and built at import in a tenth of the time (a frozen dataclass
compiles half a dozen methods when the client is imported). The pacer's views stay dataclasses: they
load on first use.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import download as download
    from . import pacing_views as pacing_views
    from . import reconcile as reconcile

_LAZY = frozenset({"download", "pacing_views", "reconcile"})
"""Modules a create and its wait never need (output files, the pacer's snapshots, the lookup after a
lost create's answer): they load on first use as `core.download` etc., not with the client."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return import_module(f"{__name__}.{name}")
