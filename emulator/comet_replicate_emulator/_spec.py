"""The contract, read from openapi.yaml: every rule the emulator enforces comes from here, none by hand."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource

SPEC_URN = "urn:comet-replicate:openapi"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")


def _is_uri(value: object) -> bool:
    """RFC 3986 absolute URI, as far as the emulator needs: a scheme, then no whitespace.

    jsonschema checks `format: uri` only when an optional package is installed; a server must not
    accept `webhook: "not a url"` on one machine and reject it on another.
    """
    if not isinstance(value, str):
        return True
    return bool(_SCHEME.match(value)) and bool(urlsplit(value).scheme)


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    for name, func in Draft202012Validator.FORMAT_CHECKER.checkers.items():
        checker.checkers[name] = func
    checker.checks("uri")(_is_uri)
    return checker


def locate_spec() -> Path:
    """Find openapi.yaml without importing the wrapper's code.

    An installed wheel carries it as a data file inside the `comet_replicate` folder (hatch
    force-include); a source tree has it at the repository root.
    """
    candidates: list[Path] = []
    try:
        found = importlib.util.find_spec("comet_replicate")
    except (ImportError, ValueError):
        found = None
    if found is not None and found.submodule_search_locations:
        candidates.extend(Path(loc) / "openapi.yaml" for loc in found.submodule_search_locations)
    candidates.append(Path(__file__).resolve().parents[2] / "openapi.yaml")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError("openapi.yaml not found; looked at: " + ", ".join(str(p) for p in candidates))


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class ModelInfo:
    """One `x-models` entry: the input schema's pointer and whether the output is a list."""

    name: str
    input_ref: str
    output_ref: str
    output_is_list: bool
    properties: Mapping[str, Any]

    def default(self, field: str) -> Any:
        """The schema's default for `field` (None when the schema has none)."""
        prop = self.properties.get(field)
        return prop.get("default") if isinstance(prop, Mapping) else None

    def has(self, field: str) -> bool:
        return field in self.properties


class Spec:
    """The parsed spec plus validators built over one referencing registry."""

    def __init__(self, document: Mapping[str, Any], path: Path | None = None) -> None:
        self.document = document
        self.path = path
        self.text = path.read_text(encoding="utf-8") if path is not None else yaml.safe_dump(document)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URN, Resource.opaque(document))
        self.format_checker = _format_checker()
        self.models: dict[str, ModelInfo] = {}
        for name, entry in document.get("x-models", {}).items():
            output = self.resolve(entry["output"])
            props = self.resolve(entry["input"]).get("properties", {})
            self.models[name] = ModelInfo(
                name=name,
                input_ref=entry["input"],
                output_ref=entry["output"],
                output_is_list=output.get("type") == "array",
                properties=props,
            )

    @classmethod
    def load(cls, path: Path | None = None) -> Spec:
        path = path or locate_spec()
        return cls(yaml.safe_load(path.read_text(encoding="utf-8")), path)

    def resolve(self, ref: str) -> Any:
        """Follow a local `#/...` reference inside the document."""
        node: Any = self.document
        for raw in ref.lstrip("#").strip("/").split("/"):
            node = node[raw.replace("~1", "/").replace("~0", "~")]
        return node

    @functools.cached_property
    def _root(self) -> Draft202012Validator:
        """A validator whose resolver has the whole document as its root, so `#/...` refs resolve."""
        return Draft202012Validator(self.document, registry=self.registry, format_checker=self.format_checker)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one Spec per process; validators are reused
    def validator(self, pointer: str) -> Validator:
        """A Draft 2020-12 validator for the schema at `#<pointer>` with every $ref resolvable.

        Built on the subschema itself (not a `$ref` to it), which halves the cost of each check.
        """
        return self._root.evolve(schema=self.resolve("#" + pointer))

    def ref_validator(self, ref: str) -> Validator:
        return self.validator(ref.lstrip("#"))

    def errors(self, ref: str, instance: Any) -> list[ValidationError]:
        return sorted(self.ref_validator(ref).iter_errors(instance), key=lambda e: list(e.absolute_path))

    # -- parameters ------------------------------------------------------------------------------

    def operation(self, path: str, method: str) -> Mapping[str, Any]:
        return self.document["paths"][path][method]  # type: ignore[no-any-return]

    def parameters(self, path: str, method: str) -> Iterator[tuple[Mapping[str, Any], str]]:
        """Each parameter of an operation with the pointer of its schema."""
        for param in self.operation(path, method).get("parameters", []):
            if "$ref" in param:
                ref = param["$ref"]
                yield self.resolve(ref), ref.lstrip("#") + "/schema"
            else:  # pragma: no cover - the spec keeps parameters in components
                raise ValueError("inline parameters are not supported")

    # -- responses -------------------------------------------------------------------------------

    def response_schema_pointer(self, path: str, method: str, status: int, content_type: str) -> str | None:
        """The pointer of the schema a response must match; raises LookupError if undeclared."""
        responses = self.operation(path, method)["responses"]
        key = str(status)
        if key not in responses:
            raise LookupError(f"{method.upper()} {path} does not declare status {status}")
        response = responses[key]
        base = _pointer("", "paths", path, method, "responses", key)
        if "$ref" in response:
            base = response["$ref"].lstrip("#")
            response = self.resolve(response["$ref"])
        content = response.get("content")
        if not content:
            return None
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in content:
            raise LookupError(f"{method.upper()} {path} {status} does not declare content type {media}")
        if "schema" not in content[media]:
            return None
        return base + "/" + _pointer("content", media, "schema")

    def validate_response(self, path: str, method: str, status: int, content_type: str, body: bytes) -> None:
        """Raise AssertionError when a response does not match what the spec declares."""
        import json

        try:
            pointer = self.response_schema_pointer(path, method, status, content_type)
        except LookupError as exc:
            raise AssertionError(str(exc)) from exc
        if pointer is None or not content_type.split(";", 1)[0].strip().endswith("json"):
            return
        try:
            instance = json.loads(body)
        except ValueError as exc:
            raise AssertionError(f"{method.upper()} {path} {status}: body is not JSON") from exc
        errors = list(self.validator(pointer).iter_errors(instance))
        if errors:
            raise AssertionError(
                f"{method.upper()} {path} {status}: " + "; ".join(e.message for e in errors[:5])
            )


@functools.lru_cache(maxsize=1)
def default_spec() -> Spec:
    """The bundled spec, parsed once per process."""
    return Spec.load()
