"""The public names are exactly the promised ones, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import comet_replicate

PROMISED = {
    "Client",
    "AsyncClient",
    "verify_webhook",
    "FileOutput",
    "CometReplicateError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "InputValidationError",
    "PredictionError",
    "PredictionFailed",
    "PredictionCanceled",
    "PredictionAborted",
    "PredictionTimeout",
    "UnexpectedStatus",
    "ContractViolation",
    "PaymentRequiredError",
    "PayloadTooLargeError",
    "OriginTimeoutError",
    "CreateOutcomeUnknown",
    "OutputExpired",
    "CometReplicateWarning",
    "UnknownInputFieldWarning",
    "UnknownModelWarning",
    # typed reads for mypy --strict users (issue 14 item 4), and what the README tells users to use
    "Prediction",
    "PollTuning",
    "output_urls",
    "logs_of",
    "error_of",
    "status_of",
    "RateLimit",
    "RateLimits",
    "RateLimitState",
    "LaneState",
}
EXTRA = {"WebhookVerificationError", "__version__"}
#: The batch API (comet_replicate._batch).
BATCH = {
    "AsyncBatch",
    "Batch",
    "BatchInputError",
    "BatchItem",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "Journal",
    "JournalError",
    "SQLiteJournal",
}


def test_all_is_exactly_the_public_names_sorted() -> None:
    assert set(comet_replicate.__all__) == PROMISED | EXTRA | BATCH
    assert comet_replicate.__all__ == sorted(comet_replicate.__all__)


def test_every_public_name_is_importable_and_homed_in_the_package() -> None:
    for name in comet_replicate.__all__:
        value = getattr(comet_replicate, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert value.__module__ == "comet_replicate", name


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        comet_replicate.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_error_hierarchy_matches_the_promise() -> None:
    cr = comet_replicate
    for cls in (
        cr.APIConnectionError,
        cr.APIStatusError,
        cr.InputValidationError,
        cr.PredictionError,
        cr.ContractViolation,
    ):
        assert issubclass(cls, cr.CometReplicateError)
    assert issubclass(cr.APITimeoutError, cr.APIConnectionError)
    for cls in (
        cr.BadRequestError,
        cr.AuthenticationError,
        cr.PermissionDeniedError,
        cr.NotFoundError,
        cr.UnprocessableEntityError,
        cr.RateLimitError,
        cr.InternalServerError,
    ):
        assert issubclass(cls, cr.APIStatusError)
    for cls in (
        cr.PredictionFailed,
        cr.PredictionCanceled,
        cr.PredictionAborted,
        cr.PredictionTimeout,
        cr.UnexpectedStatus,
    ):
        assert issubclass(cls, cr.PredictionError)


def test_import_loads_no_yaml_jsonschema_or_generated_models() -> None:
    code = (
        "import sys, comet_replicate\n"
        "names = ('yaml', 'jsonschema', 'comet_replicate_api', 'attrs', 'httpx')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_client_import_does_not_load_yaml_or_jsonschema() -> None:
    code = (
        "import sys\nfrom comet_replicate import Client, AsyncClient\n"
        "Client(api_key='k', base_url='http://127.0.0.1:1')\n"
        "print(','.join(m for m in ('yaml', 'jsonschema') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_client_import_loads_nothing_a_create_does_not_need() -> None:
    """Output files, the pacer's views, reconcile, waiting (with its status classes), the batch, the
    webhook helper and `signal` (the first guarded create loads it) stay out of the import; so do
    httpcore, h11 and anyio (~25 ms: httpx loads them with its first transport, the library's own
    transport with the first AsyncClient)."""
    deferred = (
        "comet_replicate._files",
        "comet_replicate._views",
        "comet_replicate._batch",
        "comet_replicate._webhooks",
        "comet_replicate.core.download",
        "comet_replicate.core.pacing_views",
        "comet_replicate.core.reconcile",
        "comet_replicate.core.wait",
        "comet_replicate.core.status",
        "signal",
        "difflib",
        "httpcore",
        "h11",
        "anyio",
    )
    code = (
        "import sys\nfrom comet_replicate import Client\n"
        "assert 'comet_replicate._client' in sys.modules\n"
        f"print(','.join(m for m in {deferred!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
