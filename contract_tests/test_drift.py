"""generated/ still is what openapi.yaml produces: provenance stamps and model fields agree with the spec.

`tox -e regen-check` regenerates and diffs the whole tree; these tests catch the same drift from
inside the contract suite without the generator installed: a spec edited without regenerating
(sha256 stamps) and a hand edit in generated/ (a model's attrs fields vs its schema's properties).
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import keyword
import re
from pathlib import Path
from typing import Any

import attrs
import comet_replicate_api
import pytest
from comet_replicate_api import _provenance
from comet_replicate_api import models as generated_models

from contract_tests._spec import SPEC, SPEC_PATH, inlined, spec_sha256

PACKAGE_DIR = Path(comet_replicate_api.__file__).parent
HEADER_SHA = re.compile(r"^# \(sha256 ([0-9a-f]{64})\)", re.MULTILINE)

# The generator (openapi-python-client 0.29.1, `strings.fix_reserved_words`) appends `_` to names that
# shadow a builtin or keyword, except `id`, and to `self`, `true`, `false`, `datetime`.
_RESERVED = (set(dir(builtins)) | {"self", "true", "false", "datetime"}) - {"id"}

# Object schemas the generator turns into a union instead of a class, with the reason.
NOT_A_CLASS = {
    "ProblemDetails": "its `anyOf` of `required` lists makes ErrorBody's parser fall back to a plain dict",
}


def attribute_name(prop: str) -> str:
    """The generator's attribute name for a schema property (`input` -> `input_`)."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", prop)
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return f"{name}_" if name in _RESERVED or keyword.iskeyword(name) else name


def class_name(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in re.split(r"[_\W]+", part) if p)


def object_schemas() -> dict[str, dict[str, Any]]:
    """Every object schema with declared properties, named as the generator names its class:
    component schemas by their name, inline object properties as `<Parent><Property>`."""
    found: dict[str, dict[str, Any]] = {}

    def visit(name: str, schema: dict[str, Any]) -> None:
        if "properties" not in schema:
            return
        found[name] = schema
        for prop, sub in schema["properties"].items():
            if isinstance(sub, dict) and "$ref" not in sub and sub.get("type") == "object":
                visit(class_name(name, prop), sub)

    for name, schema in SPEC["components"]["schemas"].items():
        visit(name, schema)
    return found


def test_every_generated_module_is_stamped_with_this_specs_sha256() -> None:
    expected = spec_sha256()
    stale: list[str] = []
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) > 10, f"no generated modules under {PACKAGE_DIR}"
    for path in files:
        match = HEADER_SHA.search(path.read_text(encoding="utf-8"))
        if match is None or match.group(1) != expected:
            stale.append(f"{path.relative_to(PACKAGE_DIR)}: {match.group(1) if match else 'no stamp'}")
    assert not stale, (
        f"openapi.yaml (sha256 {expected}) changed without `tox -e regen`; stale modules:\n"
        + "\n".join(stale)
    )


def test_provenance_records_this_spec_and_the_pinned_generator() -> None:
    assert hashlib.sha256(SPEC_PATH.read_bytes()).hexdigest() == _provenance.SPEC_SHA256
    assert _provenance.GENERATOR == "openapi-python-client"
    assert _provenance.GENERATOR_VERSION == "0.29.1"


@pytest.mark.parametrize("schema_name", sorted(object_schemas()))
def test_generated_model_fields_equal_the_schema_properties(schema_name: str) -> None:
    schema = object_schemas()[schema_name]
    if schema_name in NOT_A_CLASS:
        assert not hasattr(generated_models, schema_name), (
            f"{schema_name} is now generated as a class: drop it from NOT_A_CLASS"
        )
        return
    cls = getattr(generated_models, schema_name, None)
    assert cls is not None, f"no generated model class for schema {schema_name}"
    fields = {f.name for f in attrs.fields(cls)} - {"additional_properties"}
    expected = {attribute_name(p) for p in schema["properties"]}
    assert fields == expected, (
        f"{schema_name}: missing {sorted(expected - fields)}, unexpected {sorted(fields - expected)}"
    )
    required = {attribute_name(p) for p in schema.get("required", [])}
    mandatory = {f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING and f.init}
    assert mandatory == required, f"{schema_name}: required {sorted(required)} vs {sorted(mandatory)}"


@pytest.mark.parametrize(
    "schema_name", sorted(n for n, s in SPEC["components"]["schemas"].items() if "enum" in s)
)
def test_generated_enums_equal_the_schema_enums(schema_name: str) -> None:
    cls = getattr(generated_models, schema_name)
    assert sorted(m.value for m in cls) == sorted(SPEC["components"]["schemas"][schema_name]["enum"])


def test_inline_enums_of_model_inputs_equal_the_schema() -> None:
    """`FluxSchnellInput.aspect_ratio` etc. become `<Schema><Property>` StrEnums with the same values,
    and every generated enum class comes from an enum in the spec."""
    checked = {n for n, s in SPEC["components"]["schemas"].items() if "enum" in s}
    for name, schema in object_schemas().items():
        for prop, sub in schema["properties"].items():
            sub = inlined(sub)
            if "enum" in sub and "$ref" not in schema["properties"][prop]:
                cls = getattr(generated_models, class_name(name, prop))
                assert sorted(m.value for m in cls) == sorted(sub["enum"]), f"{name}.{prop}"
                checked.add(cls.__name__)
    # Enum-valued query parameters become `<OperationId><Param>` StrEnums (listPredictions.source).
    for item in SPEC["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            for param in op.get("parameters", []):
                param = inlined(param)
                if "enum" in param.get("schema", {}):
                    cls = getattr(generated_models, class_name(op["operationId"], param["name"]))
                    assert sorted(m.value for m in cls) == sorted(param["schema"]["enum"]), param["name"]
                    checked.add(cls.__name__)
    generated_enums = {
        n for n in generated_models.__all__ if isinstance(getattr(generated_models, n), enum.EnumMeta)
    }
    assert generated_enums == checked


def test_attribute_name_follows_the_generator_rules() -> None:
    assert attribute_name("input") == "input_"
    assert attribute_name("id") == "id"
    assert attribute_name("type") == "type_"
    assert attribute_name("num_outputs") == "num_outputs"
