"""A user's script, as a newcomer writes it from the README: checked with `mypy --strict` (not one
type-ignore comment or cast) by tests/typing/test_user_script.py, and run against the emulator there.

Every `assert_type` is checked by mypy: the names a user reads have one plain type each.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import assert_type

from comet_replicate import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    Client,
    CometReplicateError,
    ContractViolation,
    CreateOutcomeUnknown,
    FileOutput,
    InputValidationError,
    NotFoundError,
    OutputExpired,
    PaymentRequiredError,
    PollTuning,
    Prediction,
    PredictionAborted,
    PredictionCanceled,
    PredictionError,
    PredictionFailed,
    PredictionTimeout,
    RateLimitError,
    UnexpectedStatus,
    error_of,
    logs_of,
    output_urls,
    status_of,
)

MODEL = "black-forest-labs/flux-schnell"


def show(prediction: Prediction) -> None:
    """An `on_update` callback: status, the last log line, the outputs so far."""
    status = status_of(prediction)
    assert_type(status, str)
    lines = logs_of(prediction).splitlines()
    assert_type(lines, list[str])
    print(prediction.id, status, lines[-1:] if lines else "", len(output_urls(prediction)))


def report(prediction: Prediction) -> str:
    error = error_of(prediction)
    assert_type(error, str | None)
    return f"{prediction.id}: {error.upper() if error else 'no error'}"


def run_one(client: Client, out: Path) -> list[Path]:
    """Run a prediction and save its files, handling every error the client documents."""
    saved: list[Path] = []
    try:
        files = client.run(MODEL, {"prompt": "a paper boat", "num_outputs": 2}, timeout=60, on_update=show)
        assert_type(files, list[FileOutput])
        for file in files:
            url: str = file.url
            path = file.save(out)
            assert_type(path, Path)
            print(url, "->", path)
            saved.append(path)
    except InputValidationError as exc:
        print("bad input field", exc.field, "allowed:", exc.allowed)
    except PredictionTimeout as exc:
        pid: str | None = exc.prediction_id
        print("still running after", exc.timeout + 0.0, "s; resume", pid, "last status", exc.status)
    except PredictionFailed as exc:
        print("failed:", exc.error or "", "logs:", (exc.logs or "")[-200:])
    except (PredictionCanceled, PredictionAborted, UnexpectedStatus) as exc:
        print(type(exc).__name__, exc.prediction_id, exc.status)
    except PredictionError as exc:
        print("prediction error", exc.prediction_id)
    except CreateOutcomeUnknown as exc:
        since: str = exc.sent_at_iso
        ids: list[str] = exc.candidate_ids
        print("maybe created:", exc.model, exc.input_sha256[:12], since, ids)
    except OutputExpired as exc:
        print("output gone:", exc.url, exc.prediction_id)
    except RateLimitError as exc:
        wait: float = exc.retry_after or 1.0
        print("throttled; retry in", wait)
    except PaymentRequiredError as exc:
        print("no credit:", exc.status + 0, exc.request_id)
    except (AuthenticationError, NotFoundError) as exc:
        print(exc.status, exc.title or exc.error_message or "", exc.request_id)
    except APIStatusError as exc:
        code: int = exc.status
        print("HTTP", code, exc.detail, exc.invalid_fields[:1])
    except APITimeoutError as exc:
        print("timed out:", exc.method, exc.url)
    except APIConnectionError as exc:
        print("no answer:", exc.url)
    except ContractViolation as exc:
        print("the server broke the spec at", exc.path, "rule", exc.rule)
    except CometReplicateError as exc:
        print("other:", exc.message)
    return saved


def step_by_step(client: Client) -> list[str]:
    """The lower-level steps, each typed."""
    created = client.predictions.create(MODEL, {"prompt": "a lighthouse"}, wait=None)
    assert_type(created, Prediction)
    done = client.predictions.wait(created, timeout=60, on_update=show)
    print(report(done))
    files = client.files(done)
    assert_type(files, list[FileOutput])
    data = files[0].read()
    assert_type(data, bytes)
    urls = output_urls(done)
    assert_type(urls, list[str])
    return urls


async def run_async(client: AsyncClient) -> int:
    files = await client.run(MODEL, {"prompt": "a red boat"})
    assert_type(files, list[FileOutput])
    data = await files[0].aread()
    return len(data)


def main() -> None:
    """Run with COMETAPI_KEY (and COMETAPI_BASE_URL for the emulator) set."""
    with Client(max_retries=4, poll_tuning=PollTuning()) as client:
        run_one(client, Path("."))
        step_by_step(client)

    async def go() -> int:
        async with AsyncClient() as client:
            return await run_async(client)

    print(asyncio.run(go()), "bytes")


if __name__ == "__main__":
    main()
