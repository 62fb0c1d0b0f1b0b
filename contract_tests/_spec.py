"""What the contract suite needs from openapi.yaml, on top of the shared loader.

Loading, validators, `$ref` resolution and openapi-core adapters live once, in `tests/_spec_helpers.py`
(shared with tests/); this module adds the contract suite's views: models and their schemas,
hypothesis strategies, and request/response checks that also hold a known model's input and output to
its `x-models` schemas. Everything is derived from the spec at run time: no rule of the contract is
restated by hand. The spec is the one next to this directory, so a mutated copy of the repository
validates against its own (mutated) openapi.yaml.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from tests._spec_helpers import (
    ROOT,
    SPEC_PATH,
    inlined,
    openapi,
    server_origins,
    spec,
)
from tests._spec_helpers import request_errors as _openapi_request_errors
from tests._spec_helpers import response_errors as _openapi_response_errors
from tests._spec_helpers import validator as _validator

__all__ = ["ROOT", "SPEC_PATH", "inlined", "openapi"]

SPEC: dict[str, Any] = spec()

#: Base URL used for mocked traffic: the spec's first server (CometAPI).
BASE_URL: str = SPEC["servers"][0]["url"]
#: The path prefix of each server in the spec (`/replicate/v1`, `/v1`) mapped to its origin.
SERVER_ORIGINS: dict[str, str] = server_origins()
API_KEY = "sk-contract-test-key"


def per_model_examples() -> int:
    """Examples for a test parametrized over all x-models entries: a quarter of the profile's budget
    (ci: 10 per model; dev: 75), since openapi-core spends ~0.1 s validating each request."""
    from hypothesis import settings

    return max(10, settings().max_examples // 4)


def spec_sha256() -> str:
    return hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest()


def ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def pointer_name(pointer: str) -> str:
    """`#/components/schemas/FluxSchnellInput` -> `FluxSchnellInput`."""
    prefix = "#/components/schemas/"
    assert pointer.startswith(prefix), pointer
    return pointer[len(prefix) :]


def validator(schema_name: str) -> Draft202012Validator:
    """A 2020-12 validator for one component schema, with every `$ref` resolved inside the spec."""
    return _validator(ref(schema_name))


def schema_errors(schema_name: str, instance: Any) -> list[str]:
    return [
        f"{schema_name}{''.join(f'/{p}' for p in e.absolute_path)}: {e.message}"
        for e in validator(schema_name).iter_errors(instance)
    ]


def component_schema(schema_name: str) -> dict[str, Any]:
    schema = SPEC["components"]["schemas"][schema_name]
    assert isinstance(schema, dict)
    return schema


def models() -> dict[str, tuple[str, str]]:
    """`x-models`: model id -> (input schema name, output schema name)."""
    return {
        model: (pointer_name(entry["input"]), pointer_name(entry["output"]))
        for model, entry in SPEC["x-models"].items()
    }


def operations() -> list[tuple[str, str, str]]:
    """(method, path template, operationId) for every operation in the spec."""
    return [
        (method.upper(), path, op["operationId"])
        for path, item in SPEC["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    ]


@functools.cache
def from_schema_strategy(schema_name: str) -> Any:
    """A hypothesis strategy of instances valid for one component schema (refs resolve in the root).

    Cached: canonicalising a schema is the expensive part, drawing from it is cheap.
    """
    from hypothesis_jsonschema import from_schema

    return from_schema(inlined(component_schema(schema_name)))


@functools.cache
def known_input_strategy(schema_name: str) -> Any:
    """Instances of a model's input schema using only the fields it lists.

    The schemas leave unknown fields open (the server ignores them, and the client sends them with a
    warning); a test of what a client *knows* draws from the declared fields alone.
    """
    from hypothesis_jsonschema import from_schema

    return from_schema({**inlined(component_schema(schema_name)), "additionalProperties": False})


def cancel_after_values() -> Any:
    """`Cancel-After` values in Replicate's documented form: a number of seconds, or `h`/`m`/`s` units
    combined in that order, at least the documented 5 s.

    The spec states this form in words only (Replicate documents no pattern, so it sets none), which
    is why the suite spells it out here.
    """
    from hypothesis import strategies as st

    units = st.tuples(st.integers(0, 48), st.integers(0, 59), st.integers(0, 59)).filter(
        lambda hms: hms[0] * 3600 + hms[1] * 60 + hms[2] >= 5
    )
    combined = units.map(
        lambda hms: "".join(f"{n}{u}" for n, u in zip(hms, "hms", strict=True) if n) or f"{hms[2]}s"
    )
    return st.integers(5, 172_800).map(str) | combined


_CANCEL_AFTER_UNITS = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def documented_cancel_after(value: object) -> bool:
    """True for a `Cancel-After` value in Replicate's documented form of at least 5 s (the form
    `cancel_after_values` draws from); a server may refuse anything else with a 400."""
    if not isinstance(value, str) or not value.isascii():
        return False
    if value.isdigit():
        return int(value) >= 5
    match = _CANCEL_AFTER_UNITS.fullmatch(value)
    if not value or match is None:
        return False
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds >= 5


def error_examples() -> dict[str, Any]:
    return {k: v["value"] for k, v in SPEC["components"]["examples"].items() if k.startswith("Error")}


# --- whole requests and responses through openapi-core ---------------------------------------------


def model_of(raw_path: str) -> str | None:
    """`.../models/owner/name/predictions` -> `owner/name`."""
    segments = raw_path.split("?")[0].strip("/").split("/")
    if len(segments) >= 4 and segments[-1] == "predictions" and segments[-4] == "models":
        return f"{segments[-3]}/{segments[-2]}"
    return None


def request_errors(request: httpx.Request, *, model_inputs: bool = True) -> list[str]:
    """Everything wrong with a request according to openapi.yaml (empty list = conforms).

    openapi-core checks method, raw path and its parameters, security (Authorization), headers
    (`Prefer`, `Cancel-After`), Content-Type and the body; for a model listed in `x-models` the
    body's `input` is also validated against that model's input schema.
    """
    problems = _openapi_request_errors(request)
    if model_inputs and request.method == "POST":
        model = model_of(request.url.raw_path.decode("ascii"))
        if model in models() and request.content:
            body = json.loads(request.content)
            if isinstance(body, dict) and "input" in body:
                problems += schema_errors(models()[model][0], body["input"])
    return problems


def response_errors(request: httpx.Request, response: httpx.Response) -> list[str]:
    """Everything wrong with a response to `request` according to openapi.yaml."""
    problems = _openapi_response_errors(request, response)
    ctype = response.headers.get("Content-Type", "")
    if response.is_success and "json" in ctype:
        # openapi-core validates the body against Prediction; also hold a known model's output to
        # its x-models output schema.
        body = response.json()
        if isinstance(body, dict) and body.get("model") in models() and body.get("output") is not None:
            problems += schema_errors(models()[body["model"]][1], body["output"])
    return problems


def assert_conforms(request: httpx.Request, response: httpx.Response | None = None) -> None:
    problems = request_errors(request)
    if response is not None:
        problems += response_errors(request, response)
    assert not problems, "\n".join(problems)


def redacted_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: ("Bearer <redacted>" if k.lower() == "authorization" else v) for k, v in items}
