"""openapi.yaml itself: a valid OpenAPI 3.1 document whose examples obey their own schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests._spec_helpers import resolve, spec, validator

OPERATIONS = {
    ("post", "/models/{model_owner}/{model_name}/predictions"): "createPrediction",
    ("get", "/predictions/{prediction_id}"): "getPrediction",
    ("post", "/predictions/{prediction_id}/cancel"): "cancelPrediction",
}


def test_spec_is_a_valid_openapi_31_document() -> None:
    validate(spec())
    assert spec()["openapi"].startswith("3.1")


def test_servers_are_cometapi_first_then_replicate_direct() -> None:
    assert [s["url"] for s in spec()["servers"]] == [
        "https://api.cometapi.com/replicate/v1",
        "https://api.replicate.com/v1",
    ]


def test_operations_have_the_promised_ids_and_two_segment_model_path() -> None:
    found = {
        (method, path): op["operationId"]
        for path, item in spec()["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    assert found == OPERATIONS
    assert not any("{models}" in path for path in spec()["paths"])


def test_cancel_description_warns_cometapi_does_not_list_it() -> None:
    text = spec()["paths"]["/predictions/{prediction_id}/cancel"]["post"]["description"]
    assert "CometAPI" in text and "404" in text and "405" in text


def test_status_is_forward_compatible_and_lists_six_values() -> None:
    schemas = spec()["components"]["schemas"]
    assert schemas["PredictionStatus"]["enum"] == [
        "starting",
        "processing",
        "succeeded",
        "failed",
        "canceled",
        "aborted",
    ]
    v = validator("#/components/schemas/Prediction")
    base = {"id": "x", "model": "a/b", "input": {}, "output": None, "created_at": "2026-01-01T00:00:00Z"}
    assert v.is_valid({**base, "status": "queued"}), "an unknown status must still validate"


def test_prediction_accepts_unknown_fields_and_every_output_shape() -> None:
    v = validator("#/components/schemas/Prediction")
    base = {
        "id": "x",
        "model": "a/b",
        "input": {},
        "status": "succeeded",
        "created_at": "2026-01-01T00:00:00Z",
    }
    for output in (None, "https://x.test/a.png", ["https://x.test/a.png"], {"text": "hi"}, 3, True):
        assert v.is_valid({**base, "output": output, "brand_new_field": 1}), output


def test_create_link_to_get_and_cancel_uses_the_response_id() -> None:
    responses = spec()["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["responses"]
    for code in ("200", "201", "202"):
        links = {name: resolve(link) for name, link in responses[code]["links"].items()}
        assert links["GetPrediction"]["operationId"] == "getPrediction"
        assert links["CancelPrediction"]["operationId"] == "cancelPrediction"
        assert links["GetPrediction"]["parameters"] == {"prediction_id": "$response.body#/id"}


def test_every_error_status_is_documented_with_both_shapes() -> None:
    create = spec()["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["responses"]
    for code in ("400", "401", "403", "404", "422", "429", "500", "502", "503", "504"):
        body = resolve(create[code])["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ErrorBody"}, code
    v = validator("#/components/schemas/ErrorBody")
    assert v.is_valid({"error": {"message": "bad key", "type": "comet_api_error", "code": ""}})
    assert v.is_valid({"title": "Input validation failed", "status": 422, "invalid_fields": []})
    assert not v.is_valid({}), "an empty object is neither shape"
    assert not v.is_valid({"error": {}}), "the envelope needs a message"


def _examples() -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, example value) for every example in the document."""
    doc = spec()
    for name, schema in doc["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples", [])):
            yield f"schemas/{name}[{i}]", f"#/components/schemas/{name}", example
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, ex in body.get("examples", {}).items():
                yield f"{method} {path} request {name}", body["schema"]["$ref"], resolve(ex)["value"]
            for code, response in op["responses"].items():
                for ctype, media in resolve(response).get("content", {}).items():
                    pointer = media["schema"].get("$ref")
                    if pointer is None:
                        continue
                    for name, ex in media.get("examples", {}).items():
                        yield f"{method} {path} {code} {ctype} {name}", pointer, resolve(ex)["value"]
    for name, param in doc["components"]["parameters"].items():
        yield f"parameters/{name}", f"#/components/parameters/{name}/schema", param["example"]


EXAMPLES = list(_examples())


def test_the_document_has_examples_for_every_operation_and_documented_response() -> None:
    where = " ".join(w for w, _, _ in EXAMPLES)
    for needle in (
        "request seed",
        "starting",
        "processing",
        "succeededList",
        "succeededString",
        "failed",
        "canceled",
        "aborted",
        "invalidFields",
        "throttled",
        "invalidRequest",
    ):
        assert needle in where, needle
    assert len(EXAMPLES) >= 25


@pytest.mark.parametrize(("where", "pointer", "example"), EXAMPLES, ids=[w for w, _, _ in EXAMPLES])
def test_every_example_validates_against_its_schema(where: str, pointer: str, example: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(pointer).iter_errors(example)]
    assert errors == [], where


def test_every_x_models_entry_points_at_existing_input_and_output_schemas() -> None:
    doc = spec()
    models = doc["x-models"]
    assert "black-forest-labs/flux-schnell" in models and len(models) >= 9
    for model, entry in models.items():
        for key in ("input", "output"):
            assert resolve({"$ref": entry[key]}), (model, key)
        schema = resolve({"$ref": entry["input"]})
        assert schema["required"][0] == "prompt" and schema["additionalProperties"] is False, model


@pytest.mark.parametrize(
    ("model", "good", "bad_field"),
    [
        ("black-forest-labs/flux-schnell", {"prompt": "p", "megapixels": "0.25"}, {"megapixels": 0.25}),
        ("black-forest-labs/flux-schnell", {"prompt": "p", "num_outputs": 4}, {"num_outputs": 5}),
        (
            "black-forest-labs/flux-kontext-pro",
            {"prompt": "p", "output_format": "jpg"},
            {"output_format": "webp"},
        ),
        (
            "black-forest-labs/flux-kontext-max",
            {"prompt": "p", "safety_tolerance": 0},
            {"safety_tolerance": 7},
        ),
        (
            "black-forest-labs/flux-1.1-pro-ultra",
            {"prompt": "p", "output_format": "png"},
            {"output_quality": 80},
        ),
        ("black-forest-labs/flux-pro", {"prompt": "p", "safety_tolerance": 6}, {"safety_tolerance": 0}),
        ("black-forest-labs/flux-2-pro", {"prompt": "p", "resolution": "2 MP"}, {"safety_tolerance": 6}),
        (
            "black-forest-labs/flux-kontext-dev",
            {"prompt": "p", "input_image": "https://x.test/i.png"},
            {"input_image": None},
        ),
    ],
)
def test_model_input_schemas_encode_the_documented_rules(
    model: str, good: dict[str, Any], bad_field: dict[str, Any]
) -> None:
    v = validator(spec()["x-models"][model]["input"])
    assert v.is_valid(good)
    assert not v.is_valid({**good, **bad_field})
    assert not v.is_valid({k: val for k, val in good.items() if k != "prompt"}), "prompt is required"


def test_prefer_header_pattern_matches_the_documented_forms() -> None:
    v = validator("#/components/parameters/Prefer/schema")
    assert all(v.is_valid(x) for x in ("wait", "wait=1", "wait=60", "wait=5"))
    assert not any(v.is_valid(x) for x in ("wait=0", "wait=", "nowait", "wait=100"))
