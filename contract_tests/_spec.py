"""One place that reads openapi.yaml for the contract suite and validates things against it.

Everything here is derived from the spec at run time (jsonschema over the component schemas,
openapi-core over whole requests and responses): no rule of the contract is restated by hand.
The spec is the one next to this directory, so a mutated copy of the repository validates against
its own (mutated) openapi.yaml.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
SPEC_URN = "urn:comet-replicate:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URN, Resource.opaque(SPEC))

#: Base URL used for mocked traffic: the spec's first server (CometAPI).
BASE_URL: str = SPEC["servers"][0]["url"]
#: The path prefix of each server in the spec (`/replicate/v1`, `/v1`) mapped to its origin.
SERVER_ORIGINS: dict[str, str] = {
    httpx.URL(s["url"])
    .raw_path.decode()
    .rstrip("/"): f"{httpx.URL(s['url']).scheme}://{httpx.URL(s['url']).host}"
    for s in SPEC["servers"]
}
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


@functools.cache
def validator(schema_name: str) -> Draft202012Validator:
    """A 2020-12 validator for one component schema, with every `$ref` resolved inside the spec."""
    return Draft202012Validator(
        {"$ref": f"{SPEC_URN}{ref(schema_name)}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


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


def inlined(node: Any) -> Any:
    """A copy of `node` with every local `$ref` replaced by its target (the spec has no cycles).

    A self-contained schema keeps hypothesis-jsonschema from canonicalising all the components.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            resolved = inlined(target)
            return {**resolved, **inlined(siblings)} if siblings else resolved
        return {k: inlined(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inlined(v) for v in node]
    return node


def error_examples() -> dict[str, Any]:
    return {k: v["value"] for k, v in SPEC["components"]["examples"].items() if k.startswith("Error")}


# --- whole requests and responses through openapi-core ---------------------------------------------


@functools.cache
def openapi() -> Any:
    from openapi_core import Config, OpenAPI

    # openapi-core deserialises only `application/json` as JSON; RFC 7807 bodies are JSON too.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


def _split_server(raw_path: str) -> tuple[str, str]:
    """Map a request path to (spec server origin, path) so any host (respx, emulator) validates."""
    for prefix, origin in sorted(SERVER_ORIGINS.items(), key=lambda kv: -len(kv[0])):
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            return origin, raw_path
    # No server prefix: let openapi-core report "server not found" against the first server.
    return next(iter(SERVER_ORIGINS.values())), raw_path


class OpenAPIRequest:
    """openapi-core's request protocol over an httpx.Request.

    The path is the RAW path (`url.raw_path`), so a percent-encoded slash (`%2F`) stays visible
    and fails to match the two-segment template instead of being hidden by decoding.
    """

    def __init__(self, request: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        raw = request.url.raw_path.decode("ascii")
        raw_path, _, query = raw.partition("?")
        self.host_url, self.path = _split_server(raw_path)
        self.method = request.method.lower()
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("Content-Type", "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(query)),
            header=Headers(list(request.headers.multi_items())),
            cookie=ImmutableMultiDict(),
        )


class OpenAPIResponse:
    def __init__(self, response: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(list(response.headers.multi_items()))


def _errors_of(result: Any) -> list[str]:
    out: list[str] = []
    for err in result.errors:
        parts = [f"{type(err).__name__}: {err}"]
        cause = err.__cause__
        while cause is not None:
            parts.append(f"{type(cause).__name__}: {cause}")
            schema_errors_ = getattr(cause, "schema_errors", None)
            if schema_errors_:
                parts.extend(f"  - {e.message}" for e in schema_errors_)
            cause = cause.__cause__
        out.append(" <- ".join(parts))
    return out


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
    result = openapi().unmarshal_request(OpenAPIRequest(request))
    problems = _errors_of(result)
    if model_inputs and request.method == "POST":
        model = model_of(request.url.raw_path.decode("ascii"))
        if model in models() and request.content:
            body = json.loads(request.content)
            if isinstance(body, dict) and "input" in body:
                problems += schema_errors(models()[model][0], body["input"])
    return problems


def response_errors(request: httpx.Request, response: httpx.Response) -> list[str]:
    """Everything wrong with a response to `request` according to openapi.yaml."""
    result = openapi().unmarshal_response(OpenAPIRequest(request), OpenAPIResponse(response))
    problems = _errors_of(result)
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
