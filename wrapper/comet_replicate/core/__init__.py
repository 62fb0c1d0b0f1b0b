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
compiles half a dozen methods when the client is imported). They are declared as `class X(Record)`:
`Record` is `typing.NamedTuple` to type checkers and, at run time, builds the same
`collections.namedtuple` class without turning each (string) annotation into a compiled `ForwardRef`
— that compile was two thirds of a record's cost at import. The pacer's views stay dataclasses: they
load on first use.
"""

from collections import namedtuple
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import NamedTuple as Record

    from . import download as download
    from . import pacing_views as pacing_views
    from . import reconcile as reconcile
    from . import wait as wait
else:
    _RESERVED = frozenset(
        (
            "__new__",
            "__init__",
            "__slots__",
            "__getnewargs__",
            "_fields",
            "_field_defaults",
            "_make",
            "_replace",
            "_asdict",
            "_source",
        )
    )
    """What `typing.NamedTuple` refuses to let a class body override (the tuple's own machinery)."""
    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__"})

    class _RecordType(type):
        """Builds `class X(Record): ...` as `typing.NamedTuple` does: a `collections.namedtuple` with
        the annotated fields (a field with a value is a default) plus the body's methods and
        docstring; the annotations stay the strings `from __future__ import annotations` made them."""

        def __new__(mcls, typename: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
            if not bases:  # `Record` itself
                return super().__new__(mcls, typename, bases, namespace)
            if bases != (Record,):
                raise TypeError("a Record can only inherit from Record")
            fields = namespace.get("__annotations__", {})
            defaults = [namespace[name] for name in fields if name in namespace]
            if defaults and any(name not in namespace for name in list(fields)[-len(defaults) :]):
                raise TypeError(f"{typename}: a field without a default follows one with a default")
            cls = namedtuple(typename, fields, defaults=defaults, module=namespace["__module__"])
            cls.__annotations__ = cls.__new__.__annotations__ = dict(fields)
            for key, value in namespace.items():
                if key in _RESERVED:
                    raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
                if key not in _NOT_COPIED and key not in fields:
                    setattr(cls, key, value)
                    set_name = getattr(type(value), "__set_name__", None)
                    if set_name is not None:
                        set_name(value, cls, key)
            return cls

    class Record(metaclass=_RecordType):
        """`typing.NamedTuple` without the per-field `ForwardRef` compile (see the module's doc)."""


__all__ = ["Record"]

_LAZY = frozenset({"download", "pacing_views", "reconcile", "wait"})
"""Modules a create never needs (output files, the pacer's snapshots, the lookup after a lost
create's answer, and `wait`: waiting and `run`): they load on first use as `core.download` etc., not
with the client (`wait` with the first `run` or `wait`)."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return import_module(f"{__name__}.{name}")
