"""Whether a failed create surely made no prediction (so its line may be created again).

Inferred from the error: an input the client refused, a 4xx the server answered (it acted on
nothing), or a connection that was never established. Anything else — a 5xx, a dropped or timed-out
answer — may come after the server created the prediction: the outcome is unknown.
"""

from __future__ import annotations

import httpx

from .._errors import APIConnectionError, APIStatusError, InputValidationError

__all__ = ["definitely_not_created"]


def definitely_not_created(exc: BaseException) -> bool:
    """True when a failed create surely made no prediction."""
    if isinstance(exc, InputValidationError):
        return True
    if isinstance(exc, APIStatusError):
        return 400 <= exc.status < 500  # the server refused; a 5xx may come after the create took effect
    if isinstance(exc, APIConnectionError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
                return True  # no connection, so the request never left this machine
            cause = cause.__cause__ or cause.__context__
    return False
