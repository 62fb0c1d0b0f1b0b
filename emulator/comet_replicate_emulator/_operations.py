"""The API operations the emulator serves, each under both prefixes (CometAPI's and Replicate's)."""

from __future__ import annotations

from dataclasses import dataclass

COMET_PREFIX = "/replicate/v1"
REPLICATE_PREFIX = "/v1"


@dataclass(frozen=True)
class Operation:
    """One operation: its name in stats and fault settings, and where openapi.yaml declares it."""

    name: str
    template: str
    method: str


CREATE = Operation("create", "/models/{model_owner}/{model_name}/predictions", "post")
GET = Operation("get", "/predictions/{prediction_id}", "get")
CANCEL = Operation("cancel", "/predictions/{prediction_id}/cancel", "post")
LIST = Operation("list", "/predictions", "get")
