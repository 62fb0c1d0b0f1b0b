"""The response check the emulator tests rely on does catch a response that breaks the spec."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest


def response(status: int, body: object, path: str = "/replicate/v1/predictions/abc") -> httpx.Response:
    request = httpx.Request("GET", "http://emulator.test" + path)
    return httpx.Response(status, json=body, request=request)


def test_check_rejects_a_prediction_without_required_fields(
    spec_check: Callable[[httpx.Response], bool],
) -> None:
    with pytest.raises(Exception, match=r"(?i)schema|required|id"):
        spec_check(response(200, {"status": "starting"}))


def test_check_rejects_an_undeclared_status(spec_check: Callable[[httpx.Response], bool]) -> None:
    with pytest.raises(Exception, match=r"(?i)status|undocumented|418"):
        spec_check(response(418, {"detail": "teapot"}))


def test_check_accepts_a_documented_problem_and_skips_files(
    spec_check: Callable[[httpx.Response], bool],
) -> None:
    assert spec_check(response(404, {"title": "Not found", "detail": "Not found.", "status": 404})) is True
    assert spec_check(response(200, {}, path="/files/abc/out-0.webp")) is False
