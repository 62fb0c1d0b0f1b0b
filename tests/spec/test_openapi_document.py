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
    ("get", "/predictions"): "listPredictions",
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
        # Unknown fields stay open (Replicate ignores them; a copied schema goes stale), and every
        # schema names where and when it was copied from.
        assert schema["required"][0] == "prompt" and schema["additionalProperties"] is True, model
        assert schema["x-source"] and "x-unknown-fields" in schema, model


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
            {"output_format": "webp"},
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


# --- issue 12 (contract fidelity) and issue 18 (list route) ---------------------------------

PATHS_WITH_ALL_STATUSES = (
    ("/models/{model_owner}/{model_name}/predictions", "post"),
    ("/predictions/{prediction_id}", "get"),
    ("/predictions/{prediction_id}/cancel", "post"),
    ("/predictions", "get"),
)


@pytest.mark.parametrize(("path", "method"), PATHS_WITH_ALL_STATUSES)
def test_every_operation_documents_402_524_and_the_wrong_path_301(path: str, method: str) -> None:
    responses = spec()["paths"][path][method]["responses"]
    for code in ("301", "402", "524"):
        assert code in responses, (path, code)
    assert "text/html" in resolve(responses["524"])["content"], "Cloudflare answers 524 with HTML"
    assert "application/json" in resolve(responses["524"])["content"], "or with JSON"
    assert "text/html" in resolve(responses["301"])["content"]
    assert "text/html" in resolve(responses["404"])["content"], "a wrong path can answer an HTML 404"


def test_create_documents_413_and_location_on_201_and_202() -> None:
    create = spec()["paths"]["/models/{model_owner}/{model_name}/predictions"]["post"]["responses"]
    assert "413" in create
    for code in ("201", "202"):
        assert "Location" in create[code]["headers"], code


def test_402_insufficient_credit_problem_details_is_an_error_body() -> None:
    example = resolve(spec()["components"]["examples"]["ErrorInsufficientCredit"])["value"]
    assert example["status"] == 402 and example["title"] == "Insufficient credit"
    assert validator("#/components/schemas/ErrorBody").is_valid(example)


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "bad key", "type": "comet_api_error", "code": ""}},
        {"title": "Insufficient credit", "detail": "no credit", "status": 402},
        {"detail": "Request was throttled. Expected available in 1 second."},
        {"error": "upstream request failed"},
        {"message": "the image could not be generated"},
    ],
)
def test_every_error_body_shape_the_apis_answer_is_an_error_body(body: dict[str, Any]) -> None:
    assert validator("#/components/schemas/ErrorBody").is_valid(body)


def test_error_body_still_refuses_shapes_without_any_message() -> None:
    v = validator("#/components/schemas/ErrorBody")
    for body in ({}, {"error": {}}, {"error": 3}, {"message": None}, {"status": 500}):
        assert not v.is_valid(body), body


def test_prefer_admits_exactly_wait_and_wait_1_to_60() -> None:
    v = validator("#/components/parameters/Prefer/schema")
    admitted = {f"wait={n}" for n in range(130) if v.is_valid(f"wait={n}")}
    assert admitted == {f"wait={n}" for n in range(1, 61)}
    assert v.is_valid("wait")
    assert not any(v.is_valid(x) for x in ("wait=05", "wait=1.5", " wait", "Wait=5", "wait=60s"))


def test_cancel_after_is_replicates_plain_string_without_an_invented_pattern() -> None:
    param = spec()["components"]["parameters"]["CancelAfter"]
    assert "pattern" not in param["schema"]
    assert "5 seconds" in param["description"] and "billed" in param["description"]
    v = validator("#/components/parameters/CancelAfter/schema")
    assert all(v.is_valid(x) for x in ("30", "30s", "5m", "2h", "1h30m45s"))


@pytest.mark.parametrize(
    "where",
    [
        ("components", "parameters", "Prefer"),
        ("components", "parameters", "CancelAfter"),
        ("components", "schemas", "PredictionRequest", "properties", "webhook"),
        ("components", "schemas", "PredictionRequest", "properties", "webhook_events_filter"),
        ("paths", "/predictions/{prediction_id}/cancel", "post"),
        ("paths", "/predictions", "get"),
    ],
)
def test_replicate_only_features_are_marked_and_say_what_happens_on_cometapi(where: tuple[str, ...]) -> None:
    node: Any = spec()
    for key in where:
        node = node[key]
    assert node["x-documented-by"] == ["replicate"], where
    assert "CometAPI" in node["description"], where
    assert node["x-source"], where


def test_429_description_names_replicates_limits_and_detail_body() -> None:
    text = spec()["components"]["responses"]["TooManyRequests"]["description"]
    assert "600" in text and "3,000" in text and "detail" in text


def test_create_body_admits_the_deprecated_stream_field() -> None:
    stream = spec()["components"]["schemas"]["PredictionRequest"]["properties"]["stream"]
    assert stream["deprecated"] is True and stream["type"] == "boolean"
    assert validator("#/components/schemas/PredictionRequest").is_valid({"input": {}, "stream": False})


def test_a_create_answer_without_output_or_with_null_metrics_and_urls_is_a_prediction() -> None:
    v = validator("#/components/schemas/Prediction")
    base = {"id": "x", "model": "a/b", "input": {}, "status": "starting"}
    assert v.is_valid({**base, "created_at": "2026-03-12T11:27:18.258Z"}), "no output key"
    assert v.is_valid({**base, "created_at": "2026-03-12T11:27:18.258Z", "metrics": None, "urls": None})
    for stamp in (
        "2026-03-12T11:27:18.258123Z",
        "2026-03-12T11:27:18.258123456Z",
        "2026-03-12T11:27:18+00:00",
    ):
        assert v.is_valid({**base, "created_at": stamp, "version": "dp-4d0bcc010b3049749a251855f12800be"})
    assert not v.is_valid({k: val for k, val in {**base, "created_at": "x"}.items() if k != "id"})


def test_list_predictions_has_replicates_shape_and_filters() -> None:
    op = spec()["paths"]["/predictions"]["get"]
    names = {resolve(p)["name"] for p in op["parameters"]}
    assert {"created_after", "created_before", "source"} <= names
    source = resolve(spec()["components"]["parameters"]["ListSource"])
    assert source["schema"]["enum"] == ["web"]
    page = resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"results", "next", "previous"}
    v = validator("#/components/schemas/PredictionPage")
    assert v.is_valid({"results": [], "next": None, "previous": None})
    assert not v.is_valid({"results": [{"id": "x"}]}), "items are predictions"


def test_flux_2_knows_prompt_upsampling_from_replicates_own_example() -> None:
    v = validator(spec()["x-models"]["black-forest-labs/flux-2-pro"]["input"])
    schema = resolve({"$ref": spec()["x-models"]["black-forest-labs/flux-2-pro"]["input"]})
    assert schema["properties"]["prompt_upsampling"] == {
        "type": "boolean",
        "default": False,
        "description": "Automatic prompt improvement.",
    }
    assert v.is_valid({"prompt": "x", "prompt_upsampling": False})
    assert not v.is_valid({"prompt": "x", "prompt_upsampling": "no"})


@pytest.mark.parametrize("model", sorted(spec()["x-models"]))
def test_model_schemas_accept_unknown_fields_but_keep_known_rules(model: str) -> None:
    v = validator(spec()["x-models"][model]["input"])
    assert v.is_valid({"prompt": "p", "input_image": "https://x.test/i.png", "a_field_added_later": 1})
    assert not v.is_valid({"prompt": 3, "input_image": "https://x.test/i.png"}), (
        "known fields keep their type"
    )
