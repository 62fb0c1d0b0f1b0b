"""The bundled openapi.yaml, loaded on first use, and validators compiled from it (cached).

The wheel ships the spec as `comet_replicate/openapi.yaml`; an editable or source tree falls back to
the repository's `openapi.yaml`. Input rules and response shapes come only from this file: nothing
here restates a rule of the spec by hand.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core import Record

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = [
    "SPEC_CACHE",
    "Violation",
    "cache_path",
    "fast_input_check",
    "first_violation",
    "follow_refs",
    "image_fields",
    "input_fields",
    "input_schema",
    "input_validator",
    "known_models",
    "load_spec",
    "model_entry",
    "output_schema",
    "parse_yaml",
    "resolve",
    "schema_validator",
    "segment_pattern",
    "spec_path",
    "spec_sha256",
    "violations",
]

_LOCK = threading.Lock()


def spec_path() -> Path:
    """Where the bundled spec lives: inside the installed package (beside this module: the wheel
    force-includes it there; looked up without importlib.resources, whose import costs ~1-5 ms per
    process), else the source tree's root."""
    here = Path(__file__)
    bundled = here.with_name("openapi.yaml")
    if bundled.is_file():
        return bundled
    root = here.resolve().parents[2] / "openapi.yaml"
    if root.is_file():
        return root
    raise FileNotFoundError(
        "openapi.yaml is missing from the comet_replicate package and no source-tree copy was found"
    )


SPEC_CACHE = "_openapi.json"
"""The parsed spec as JSON, beside this module, made by `scripts/spec_cache.py` and held to
openapi.yaml by a test: `{"openapi_yaml_sha256": ..., "spec": ...}`."""


def _parse_spec() -> dict[str, Any]:
    """The parsed openapi.yaml: from its JSON twin (`SPEC_CACHE`) when that was made from these very
    bytes, else parsed as YAML (libyaml's CSafeLoader when available). Importing PyYAML and parsing
    the file cost ~30 ms of CPU per process, ~0.4 ms as JSON, and every process that creates pays it
    once; the sha256 of the bytes read decides, so an edited openapi.yaml is never answered from a
    stale twin (it is only parsed slower until the twin is remade)."""
    with _LOCK:
        raw = spec_path().read_bytes()
        loaded = _cached(raw)
        if loaded is None:
            loaded = parse_yaml(raw)
    if not isinstance(loaded, dict):
        raise RuntimeError("openapi.yaml did not parse to a mapping")
    return loaded


def parse_yaml(raw: bytes) -> Any:
    """openapi.yaml's bytes parsed as YAML, with a safe loader (libyaml's when available)."""
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(raw, Loader=loader)


def cache_path() -> Path:
    """Where the JSON twin of openapi.yaml lives: beside this module (in the wheel and the tree)."""
    return Path(__file__).with_name(SPEC_CACHE)


def spec_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _cached(raw: bytes) -> Any:
    """The spec from `SPEC_CACHE` if it was made from `raw`, else None (missing, unreadable, stale)."""
    try:
        text = cache_path().read_bytes()
        cache = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(cache, dict) or cache.get("openapi_yaml_sha256") != spec_sha256(raw):
        return None
    return cache.get("spec")


@functools.cache
def load_spec() -> Mapping[str, Any]:
    """The whole parsed spec, kept once asked for (the CLI, contract checks, response validation)."""
    return _parse_spec()


class _Facts:
    """What every create needs from the spec, extracted once at first use.

    The hot path (model lookup, file fields, the compiled input check, the name pattern) reads only
    these. The parsed spec is not kept for it: its ~2,000 dicts and lists would otherwise sit in the
    oldest GC generation for the life of the process and be walked by every full collection.
    """

    __slots__ = ("fast", "fields", "image_fields", "models", "segment_pattern")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.models: dict[str, dict[str, str]] = {
            name: dict(entry) for name, entry in spec.get("x-models", {}).items() if isinstance(entry, dict)
        }
        self.image_fields: dict[str, Mapping[str, bool]] = {}
        self.fields: dict[str, frozenset[str]] = {}
        self.fast: dict[str, Callable[[Any], bool] | None] = {}
        for name, entry in self.models.items():
            schema = _resolve_in(spec, entry["input"])
            self.image_fields[name] = _image_fields_of(schema)
            self.fields[name] = frozenset(schema.get("properties", {}))
            self.fast[name] = _compile_fast(schema)
        param = spec["components"]["parameters"]["ModelOwner"]
        self.segment_pattern = re.compile(param["schema"]["pattern"].removeprefix("^").removesuffix("$"))


@functools.cache
def _facts() -> _Facts:
    # Reuse the kept spec when something already loaded it; otherwise parse a throwaway copy.
    spec = load_spec() if load_spec.cache_info().currsize else _parse_spec()
    return _Facts(spec)


def segment_pattern() -> re.Pattern[str]:
    """The pattern each part of `owner/name` must match (the spec's ModelOwner, unanchored)."""
    return _facts().segment_pattern


def input_fields() -> Mapping[str, frozenset[str]]:
    """Each known model's declared input fields (from the same single parse as the rest of the hot
    path's facts: a second parse of the YAML cost ~30 ms per process)."""
    return _facts().fields


def known_models() -> list[str]:
    """The `owner/name` of every model in the spec's `x-models`."""
    return sorted(load_spec().get("x-models", {}))


def model_entry(model: str) -> Mapping[str, str] | None:
    """The `x-models` entry (`input`, `output` JSON pointers) of a model, or None if unknown."""
    return _facts().models.get(model)


def resolve(pointer: str) -> Mapping[str, Any]:
    """The node a local JSON pointer (`#/components/schemas/X`) names in the spec."""
    return _resolve_in(load_spec(), pointer)


def follow_refs(pointer: str, node: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """Follow a `$ref` chain from `node` (found at `pointer`); returns where the target really lives."""
    while "$ref" in node:
        pointer = str(node["$ref"])
        node = resolve(pointer)
    return pointer, node


def _resolve_in(spec: Mapping[str, Any], pointer: str) -> Mapping[str, Any]:
    node: Any = spec
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise RuntimeError(f"{pointer} is not a schema object")
    return node


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource

    return Registry().with_resource("urn:comet-replicate-spec", Resource.opaque(load_spec()))


@functools.cache
def schema_validator(pointer: str) -> Validator:
    """A compiled Draft 2020-12 validator for a JSON pointer into the spec (`#/components/schemas/X`)."""
    from jsonschema import Draft202012Validator

    node = resolve(pointer)  # fails early on a bad pointer
    # A schema without references is validated directly: resolving a top-level $ref through the
    # registry on every call costs more than the validation itself (every create validates input).
    schema: Any = node if '"$ref"' not in json.dumps(node) else {"$ref": "urn:comet-replicate-spec" + pointer}
    validator: Validator = Draft202012Validator(
        schema,
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    return validator


class Violation(Record):
    """One way an instance breaks a schema: where (`$.a[0]`), which rule, and jsonschema's message."""

    path: str
    rule: str
    message: str


def _violation(error: Any) -> Violation:
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return Violation(path, str(error.validator), error.message[:200])


def first_violation(pointer: str, instance: Any) -> Violation | None:
    """The most relevant violation of the schema at `pointer` by `instance`, or None if it conforms."""
    from jsonschema.exceptions import best_match

    error = best_match(schema_validator(pointer).iter_errors(instance))
    return None if error is None else _violation(error)


def violations(pointer: str, instance: Any, limit: int = 5) -> list[Violation]:
    """Up to `limit` violations of the schema at `pointer` by `instance`, ordered by path."""
    errors = sorted(schema_validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [_violation(error) for error in errors[:limit]]


def fast_input_check(model: str) -> Callable[[Any], bool] | None:
    """A compiled (Rust) validity test of a known model's input schema, or None when the model is
    unknown, jsonschema-rs is unavailable or it cannot compile the schema.

    Every create validates its input; jsonschema walks the schema in Python (~40 µs per input), while
    jsonschema-rs answers in about 1 µs. It is only a fast path for the common, valid case: callers
    still ask jsonschema whenever it says no, so the error messages (and the final word) stay
    jsonschema's.
    """
    return _facts().fast.get(model)


def _compile_fast(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a declared dependency; the slow path still validates
        return None
    try:
        compiled = jsonschema_rs.Draft202012Validator(dict(schema), validate_formats=True)
    except Exception:  # pragma: no cover - a schema the Rust validator cannot compile: use jsonschema
        return None
    is_valid: Callable[[Any], bool] = compiled.is_valid
    return is_valid


def input_validator(model: str) -> Validator | None:
    """The validator of a known model's input schema; None for models the spec does not describe."""
    entry = model_entry(model)
    return None if entry is None else schema_validator(entry["input"])


def input_schema(model: str) -> Mapping[str, Any] | None:
    """The resolved input schema of a known model."""
    entry = model_entry(model)
    return None if entry is None else resolve(entry["input"])


def output_schema(model: str) -> Mapping[str, Any] | None:
    """The resolved output schema of a known model."""
    entry = model_entry(model)
    return None if entry is None else resolve(entry["output"])


def image_fields(model: str) -> Mapping[str, bool]:
    """The file-input fields of a known model: name → True for arrays of URIs, False for one URI.

    Derived from the schema (`format: uri` properties and arrays of them), not from a list of names.
    """
    return _facts().image_fields.get(model, {})


def _image_fields_of(schema: Mapping[str, Any]) -> Mapping[str, bool]:
    fields: dict[str, bool] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        if prop.get("format") == "uri":
            fields[name] = False
        elif isinstance(prop.get("items"), dict) and prop["items"].get("format") == "uri":
            fields[name] = True
    return fields
