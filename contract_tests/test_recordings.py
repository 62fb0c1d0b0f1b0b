"""Recorded exchanges (contract_tests/recordings/) follow the documented format, validate against
openapi.yaml, and replay through respx into the wrapper's flows with the expected outcome."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import comet_replicate
import httpx
import pytest
import respx
from comet_replicate import Client, InputValidationError
from comet_replicate._errors import status_error
from comet_replicate._inputs import prepare_input
from jsonschema import Draft202012Validator

from contract_tests._spec import (
    API_KEY,
    BASE_URL,
    model_of,
    models,
    request_errors,
    response_errors,
    schema_errors,
)

DIR = Path(__file__).parent / "recordings"
FORMAT = json.loads((DIR / "recording.schema.json").read_text(encoding="utf-8"))
FILES = sorted(p for p in DIR.glob("*.json") if p.name != "recording.schema.json")
# What the issue asks the recordings to cover (each name is one file).
REQUIRED = {
    "create-starting-seed",
    "get-processing",
    "get-succeeded-list",
    "get-succeeded-string",
    "get-failed",
    "get-canceled",
    "get-aborted",
    "create-401-comet-envelope",
    "create-422-invalid-fields",
    "get-429-throttled",
    "create-500-invalid-request",
    "get-502-html",
    # issue 12 item 11
    "create-402-insufficient-credit",
    "get-524-html",
    "create-524-html",
    "create-400-error-text",
    "get-500-message-text",
    "create-without-output",
    "get-succeeded-nanosecond-timestamps",
    "create-dp-version",
    "create-flux-2-prompt-upsampling",
}
# Replays whose expected outcome needs flow changes not merged yet (none since branch core phase 2:
# 524 retried on a get, CreateOutcomeUnknown after a create was sent).
NEEDS_CORE: dict[str, str] = {}


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def with_core_marks(paths: list[Path]) -> list[Any]:
    return [
        pytest.param(p, id=p.stem, marks=pytest.mark.xfail(strict=True, reason=NEEDS_CORE[p.stem]))
        if p.stem in NEEDS_CORE
        else pytest.param(p, id=p.stem)
        for p in paths
    ]


def http_request(rec: dict[str, Any]) -> httpx.Request:
    req = rec["request"]
    headers = {
        k: (f"Bearer {API_KEY}" if k.lower() == "authorization" else v) for k, v in req["headers"].items()
    }
    if "json" in req:
        return httpx.Request(req["method"], BASE_URL + req["url"], headers=headers, json=req["json"])
    return httpx.Request(req["method"], BASE_URL + req["url"], headers=headers)


def http_response(rec: dict[str, Any], request: httpx.Request | None = None) -> httpx.Response:
    resp = rec["response"]
    headers = dict(resp["headers"])
    content = json.dumps(resp["json"]).encode() if "json" in resp else resp["text"].encode()
    return httpx.Response(resp["status"], headers=headers, content=content, request=request)


@functools.cache
def client(validate: bool = False) -> Client:
    c = Client(api_key=API_KEY, base_url=BASE_URL, validate_responses=validate)
    c._driver.sleep = lambda seconds: None  # replayed answers are instant; retries and polls need no waiting
    return c


def test_the_recordings_cover_every_documented_case() -> None:
    assert set(ids(FILES)) >= REQUIRED, sorted(REQUIRED - set(ids(FILES)))


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_recording_follows_the_documented_format(path: Path) -> None:
    rec = load(path)
    errors = [e.message for e in Draft202012Validator(FORMAT).iter_errors(rec)]
    assert not errors, errors
    assert rec["name"] == path.stem
    assert API_KEY not in path.read_text(encoding="utf-8")
    assert rec.get("non_json", False) == ("text" in rec["response"])


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_recording_validates_against_the_spec(path: Path) -> None:
    rec = load(path)
    request = http_request(rec)
    refused_field = rec["expect"].get("client_side_field")
    problems = request_errors(request, model_inputs=refused_field is None)
    if refused_field:
        # The recorded input breaks the model's x-models schema on exactly the field the server named.
        model = model_of(rec["request"]["url"])
        assert model in models()
        input_problems = schema_errors(models()[model][0], rec["request"]["json"]["input"])
        assert input_problems and all(refused_field in p for p in input_problems), input_problems
    problems += response_errors(request, http_response(rec, request))
    assert not problems, "\n".join(problems)
    if rec.get("non_json"):
        with pytest.raises(ValueError):
            json.loads(rec["response"]["text"])


def check_error(error: BaseException, expect: dict[str, Any]) -> None:
    assert type(error).__name__ == expect["error"], repr(error)
    assert isinstance(error, getattr(comet_replicate, expect["error"]))
    for name, value in expect.get("fields", {}).items():
        assert getattr(error, name) == value, (name, getattr(error, name))


@pytest.mark.parametrize("validate", [False, True], ids=["plain", "validate_responses"])
@pytest.mark.parametrize("path", with_core_marks(FILES))
def test_recording_replays_into_the_wrapper(path: Path, validate: bool) -> None:
    """The same outcome with and without the client's own response validation (which must accept
    every recording, since each conforms to the spec)."""
    rec = load(path)
    req, expect = rec["request"], rec["expect"]
    response = http_response(rec)
    retries = 2 if "calls" in expect else 0
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        route = router.route(method=req["method"], path=req["url"]).mock(return_value=response)
        if req["method"] == "POST":
            model = model_of(req["url"])
            assert model is not None
            recorded_input = req["json"]["input"]
            if expect.get("client_side_field"):
                with pytest.raises(InputValidationError) as refused:
                    client().predictions.create(model, recorded_input)
                assert refused.value.field == expect["client_side_field"]
                assert not route.called, "a refused input reached the network"
            model_input = rec.get("replay_input", recorded_input)
            outcome = _replay_create(client(validate), model, model_input, expect, retries)
            if "replay_input" not in rec:
                assert json.loads(route.calls[0].request.content)["input"] == recorded_input
        else:
            outcome = _replay_get(client(validate), req["url"].rsplit("/", 1)[-1], expect, retries)
    if "calls" in expect:
        assert route.call_count == expect["calls"], route.call_count
    assert route.called
    _ = outcome


def _replay_create(
    base: Client, model: str, model_input: dict[str, Any], expect: dict[str, Any], retries: int
) -> Any:
    c = base.with_options(max_retries=retries)
    if expect["kind"] == "prediction":
        prediction = c.predictions.create(model, model_input)
        assert str(getattr(prediction.status, "value", prediction.status)) == expect["status"]
        if "id" in expect:
            assert prediction.id == expect["id"]
        return prediction
    if expect["kind"] == "outputs":
        files = c.run(model, model_input, timeout=30)
        assert [f.url for f in files] == expect["urls"]
        return files
    with pytest.raises(comet_replicate.CometReplicateError) as excinfo:
        c.predictions.create(model, model_input)
    check_error(excinfo.value, expect)
    return excinfo.value


def _replay_get(base: Client, prediction_id: str, expect: dict[str, Any], retries: int) -> Any:
    c = base.with_options(max_retries=retries)
    if expect["kind"] == "prediction":
        prediction = c.predictions.get(prediction_id)
        assert str(getattr(prediction.status, "value", prediction.status)) == expect["status"]
        return prediction
    if expect["kind"] == "outputs":
        files = c.resume(prediction_id, timeout=30)
        assert [f.url for f in files] == expect["urls"]
        return files
    with pytest.raises(comet_replicate.CometReplicateError) as excinfo:
        if expect["error"].startswith("Prediction"):
            c.resume(prediction_id, timeout=30)
        else:
            c.predictions.get(prediction_id)
    check_error(excinfo.value, expect)
    return excinfo.value


def test_run_replays_the_seed_create_then_a_succeeded_poll() -> None:
    """run → outputs across two recordings: the seed's starting create, then the finished poll."""
    create, done = load(DIR / "create-starting-seed.json"), load(DIR / "get-succeeded-list.json")
    pid = create["response"]["json"]["id"]
    finished = {**done["response"]["json"], "id": pid}
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.post(create["request"]["url"]).mock(return_value=http_response(create))
        poll = router.get(f"/predictions/{pid}").respond(200, json=finished)
        files = client().run("black-forest-labs/flux-schnell", create["request"]["json"]["input"], timeout=30)
    assert [f.url for f in files] == finished["output"]
    assert poll.call_count >= 1


ERROR_FILES = [
    p for p in FILES if load(p)["expect"]["kind"] == "error" and load(p)["response"]["status"] >= 400
]


@pytest.mark.parametrize("path", ERROR_FILES, ids=ids(ERROR_FILES))
def test_recorded_error_answer_becomes_its_typed_error(path: Path) -> None:
    """Each recorded error answer, whatever its body shape, through the one status -> error mapping.

    A flow-level error (CreateOutcomeUnknown) wraps the answer's own typed error, which must still be
    a 5xx here (the outcome is unknown because the server failed after the create was sent).
    """
    rec = load(path)
    response, expect = http_response(rec), rec["expect"]
    error = status_error(
        response.status_code,
        method=rec["request"]["method"],
        url=rec["request"]["url"],
        headers=response.headers,
        content=response.content,
    )
    assert error.status == rec["response"]["status"]
    if expect["error"] == "CreateOutcomeUnknown":
        assert isinstance(error, comet_replicate.InternalServerError)
        assert type(error) is comet_replicate.OriginTimeoutError
        return
    check_error(error, expect)
    if isinstance(error.body, dict):
        assert not error.message.startswith("HTTP "), "a JSON body of any shape gives the message"


CREATE_FILES = [
    p
    for p in FILES
    if load(p)["request"]["method"] == "POST"
    and model_of(load(p)["request"]["url"]) in models()
    and not load(p)["expect"].get("client_side_field")
]


@pytest.mark.parametrize("path", CREATE_FILES, ids=ids(CREATE_FILES))
def test_recorded_inputs_use_only_fields_the_models_schema_lists(path: Path) -> None:
    """Strict validation accepts every input a real server accepted: a field the spec lost (or never
    had, like flux-2's prompt_upsampling once) shows up here as an unknown field."""
    rec = load(path)
    model = model_of(rec["request"]["url"])
    assert model is not None
    recorded = rec["request"]["json"]["input"]
    assert prepare_input(model, recorded, validation="strict") == recorded


def test_run_follows_a_create_answer_without_output_to_its_files() -> None:
    """run → files when the create answer has no output key (and null metrics/urls)."""
    create = load(DIR / "create-without-output.json")
    done = load(DIR / "get-succeeded-nanosecond-timestamps.json")
    pid = create["response"]["json"]["id"]
    finished = {**done["response"]["json"], "id": pid}
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as router:
        router.post(create["request"]["url"]).mock(return_value=http_response(create))
        poll = router.get(f"/predictions/{pid}").respond(200, json=finished)
        files = client(True).run(
            "black-forest-labs/flux-schnell", create["request"]["json"]["input"], timeout=30
        )
    assert [f.url for f in files] == finished["output"]
    assert poll.call_count >= 1
