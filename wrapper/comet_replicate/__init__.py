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
    from comet_replicate_api.models import Prediction

    from . import _files as _files
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
    )
    from ._client import AsyncClient, Client
    from ._files import FileOutput
    from ._views import error_of, logs_of, output_urls, status_of
    from ._webhooks import WebhookVerificationError, verify_webhook
    from .core.pacing import RateLimit, RateLimits
    from .core.pacing_views import LaneState, RateLimitState
    from .core.schedule import PollTuning

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
    "PollTuning",
    "Prediction",
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
    "UnprocessableEntityError",
    "WebhookVerificationError",
    "__version__",
    "error_of",
    "logs_of",
    "output_urls",
    "status_of",
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
    "AsyncClient": "._client",
    "Client": "._client",
    "FileOutput": "._files",
    "PollTuning": ".core.schedule",
    "Prediction": "comet_replicate_api.models",  # the generated model, re-exported for annotations
    "LaneState": ".core.pacing_views",
    "RateLimit": ".core.pacing",
    "RateLimitState": ".core.pacing_views",
    "RateLimits": ".core.pacing",
    "WebhookVerificationError": "._webhooks",
    "error_of": "._views",
    "logs_of": "._views",
    "output_urls": "._views",
    "status_of": "._views",
    "verify_webhook": "._webhooks",
}


_LAZY_MODULES = frozenset({"_files", "_transport"})
"""Private modules the clients load on first use as `comet_replicate._files` (output files: a create
never needs them; `_transport`, the async API client's transport, loads with the first AsyncClient)."""


def __getattr__(name: str) -> Any:
    from importlib import import_module

    if name in _LAZY_MODULES:
        return import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    if isinstance(value, type) and value.__module__.startswith(__name__ + "."):  # ours, not generated
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Public classes report the package as their home (nicer reprs and docs than private modules).
for _name in _errors_module.__all__:
    globals()[_name].__module__ = __name__
del _name
