"""Loading openapi.yaml for tests: the repo-root copy is the source of truth."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = ROOT / "openapi.yaml"


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource("urn:spec", Resource.opaque(spec()))


def validator(pointer: str) -> Draft202012Validator:
    """A validator for a JSON pointer into the spec, e.g. '#/components/schemas/Prediction'."""
    return Draft202012Validator(
        {"$ref": "urn:spec" + pointer},
        registry=_registry(),
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


class _OpenAPIRequest:
    """openapi-core's request protocol over an httpx.Request, reading the RAW path so that a
    percent-encoded slash (`%2F`) is seen as the server would see it."""

    def __init__(self, request: Any) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers

        url = request.url
        self.host_url = f"{url.scheme}://{url.netloc.decode('ascii')}"
        self.path = url.raw_path.decode("ascii").split("?", 1)[0]
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=dict(url.params), header=Headers(list(request.headers.items())), cookie={}
        )
        self.content_type = request.headers.get("content-type", "")
        self.body = request.content or None


@functools.cache
def openapi() -> Any:
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(SPEC_PATH))


def request_errors(request: Any) -> list[str]:
    """Every way an httpx.Request breaks openapi.yaml (method, raw path, headers, security, body)."""
    result = openapi().unmarshal_request(_OpenAPIRequest(request))
    return [f"{type(e).__name__}: {e}" for e in result.errors]
