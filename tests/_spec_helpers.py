"""The one place the test suites read openapi.yaml: tests/ and contract_tests/ both import it.

The repo-root copy is the source of truth (so a mutated copy of the repository validates against its
own, mutated spec). It gives the parsed document, JSON-schema validators for any pointer into it, `$ref`
resolution, and whole-request/response validation through openapi-core. Nothing here restates a rule
of the spec by hand.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"
SPEC_URN = "urn:comet-replicate:openapi"


@functools.cache
def spec() -> dict[str, Any]:
    """The parsed openapi.yaml (parsed once; treat it as read-only, deep-copy before changing it)."""
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def registry() -> Registry[Any]:
    return Registry().with_resource(SPEC_URN, Resource.opaque(spec()))


@functools.cache
def validator(pointer: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for a JSON pointer into the spec (`#/components/schemas/Prediction`),
    with every `$ref` resolved inside the spec and formats checked."""
    return Draft202012Validator(
        {"$ref": SPEC_URN + pointer},
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def ref_parts(ref: str) -> list[str]:
    assert ref.startswith("#/"), ref
    return [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]


def resolve(node: Any) -> Any:
    """Follow local $refs until a node that is not a reference."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec()
        for part in ref_parts(str(node["$ref"])):
            target = target[part]
        node = target
    return node


def inlined(node: Any) -> Any:
    """A copy of `node` with every local `$ref` replaced by its target (the spec has no cycles).

    A self-contained schema keeps hypothesis-jsonschema from canonicalising all the components.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            resolved = inlined(resolve({"$ref": node["$ref"]}))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return {**resolved, **inlined(siblings)} if siblings else resolved
        return {k: inlined(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inlined(v) for v in node]
    return node


# --- whole requests and responses through openapi-core ---------------------------------------------


@functools.cache
def openapi() -> Any:
    from openapi_core import Config, OpenAPI

    # openapi-core deserialises only `application/json` as JSON; RFC 7807 bodies are JSON too.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


@functools.cache
def server_origins() -> dict[str, str]:
    """The path prefix of each server in the spec (`/replicate/v1`, `/v1`) mapped to its origin."""
    import httpx

    origins: dict[str, str] = {}
    for server in spec()["servers"]:
        url = httpx.URL(server["url"])
        origins[url.raw_path.decode().rstrip("/")] = f"{url.scheme}://{url.host}"
    return origins


def _split_server(raw_path: str) -> tuple[str, str]:
    """Map a request path to (spec server origin, path) so any host (respx, emulator) validates."""
    for prefix, origin in sorted(server_origins().items(), key=lambda kv: -len(kv[0])):
        if raw_path == prefix or raw_path.startswith(prefix + "/"):
            return origin, raw_path
    # No server prefix: let openapi-core report "server not found" against the first server.
    return next(iter(server_origins().values())), raw_path


class OpenAPIRequest:
    """openapi-core's request protocol over an httpx.Request.

    The path is the RAW path (`url.raw_path`), so a percent-encoded slash (`%2F`) stays visible
    and fails to match the two-segment template instead of being hidden by decoding.
    """

    def __init__(self, request: Any) -> None:
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
    def __init__(self, response: Any) -> None:
        from werkzeug.datastructures import Headers

        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(list(response.headers.multi_items()))


def errors_of(result: Any) -> list[str]:
    """openapi-core's errors with their causes (and the schema errors inside), one line each."""
    out: list[str] = []
    for err in result.errors:
        parts = [f"{type(err).__name__}: {err}"]
        cause = err.__cause__
        while cause is not None:
            parts.append(f"{type(cause).__name__}: {cause}")
            nested = getattr(cause, "schema_errors", None)
            if nested:
                parts.extend(f"  - {e.message}" for e in nested)
            cause = cause.__cause__
        out.append(" <- ".join(parts))
    return out


def request_errors(request: Any) -> list[str]:
    """Every way an httpx.Request breaks openapi.yaml (method, raw path, headers, security, body)."""
    return errors_of(openapi().unmarshal_request(OpenAPIRequest(request)))


def response_errors(request: Any, response: Any) -> list[str]:
    """Every way an httpx.Response to `request` breaks openapi.yaml (status, headers, body)."""
    return errors_of(openapi().unmarshal_response(OpenAPIRequest(request), OpenAPIResponse(response)))
