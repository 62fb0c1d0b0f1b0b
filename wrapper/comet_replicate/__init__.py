"""comet-replicate: a bounded, typed client for CometAPI's Replicate-format FLUX predictions.

```python
from comet_replicate import Client

with Client() as client:  # COMETAPI_KEY from the environment
    files = client.run("black-forest-labs/flux-schnell", {"prompt": "a paper boat"})
    files[0].save(".")
```

The error classes load with the package; the clients, files and webhook helper load on first access,
so `import comet_replicate` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _errors as _errors_module
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CometReplicateError,
    CometReplicateWarning,
    ContractViolation,
    CreateOutcomeUnknown,
    InputValidationError,
    InternalServerError,
    NotFoundError,
    OriginTimeoutError,
    OutputExpired,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    PredictionAborted,
    PredictionCanceled,
    PredictionError,
    PredictionFailed,
    PredictionTimeout,
    RateLimitError,
    UnexpectedStatus,
    UnknownInputFieldWarning,
    UnknownModelWarning,
    UnprocessableEntityError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._batch import (
        AsyncBatch,
        Batch,
        BatchInputError,
        BatchItem,
        BatchProgress,
        BatchReport,
        BatchResult,
        Journal,
        JournalError,
        SQLiteJournal,
        UnknownOutcome,
    )
    from ._client import AsyncClient, Client
    from ._files import FileOutput
    from ._webhooks import WebhookVerificationError, verify_webhook
    from .core.pacing import LaneState, RateLimit, RateLimits, RateLimitState

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBatch",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchInputError",
    "BatchItem",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "Client",
    "CometReplicateError",
    "CometReplicateWarning",
    "ContractViolation",
    "CreateOutcomeUnknown",
    "FileOutput",
    "InputValidationError",
    "InternalServerError",
    "Journal",
    "JournalError",
    "LaneState",
    "NotFoundError",
    "OriginTimeoutError",
    "OutputExpired",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PredictionAborted",
    "PredictionCanceled",
    "PredictionError",
    "PredictionFailed",
    "PredictionTimeout",
    "RateLimit",
    "RateLimitError",
    "RateLimitState",
    "RateLimits",
    "SQLiteJournal",
    "UnexpectedStatus",
    "UnknownInputFieldWarning",
    "UnknownModelWarning",
    "UnknownOutcome",
    "UnprocessableEntityError",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]

_LAZY = {
    "AsyncBatch": "._batch",
    "Batch": "._batch",
    "BatchInputError": "._batch",
    "BatchItem": "._batch",
    "BatchProgress": "._batch",
    "BatchReport": "._batch",
    "BatchResult": "._batch",
    "Journal": "._batch",
    "JournalError": "._batch",
    "SQLiteJournal": "._batch",
    "UnknownOutcome": "._batch",
    "AsyncClient": "._client",
    "Client": "._client",
    "FileOutput": "._files",
    "LaneState": ".core.pacing",
    "RateLimit": ".core.pacing",
    "RateLimitState": ".core.pacing",
    "RateLimits": ".core.pacing",
    "WebhookVerificationError": "._webhooks",
    "verify_webhook": "._webhooks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    if isinstance(value, type):
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Public classes report the package as their home (nicer reprs and docs than private modules).
for _name in _errors_module.__all__:
    globals()[_name].__module__ = __name__
del _name
