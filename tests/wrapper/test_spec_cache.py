"""The JSON twin of openapi.yaml (`_spec.SPEC_CACHE`): the client reads it instead of parsing YAML,
only for the exact bytes it was made from; the checked-in twin is current."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from comet_replicate import _spec

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_in_twin_is_made_from_the_current_openapi_yaml() -> None:
    """Fails while the twin is stale: run `python scripts/spec_cache.py`."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "spec_cache.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_spec_read_from_the_twin_equals_the_yaml_parse() -> None:
    raw = _spec.spec_path().read_bytes()
    assert _spec._parse_spec() == _spec.parse_yaml(raw)


def test_matching_bytes_are_read_from_the_twin_without_parsing_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_yaml(raw: bytes) -> Any:
        raise AssertionError("YAML parsed although the twin matches")

    monkeypatch.setattr(_spec, "parse_yaml", no_yaml)
    assert _spec._parse_spec()["x-models"]


def test_an_edited_openapi_yaml_is_parsed_as_yaml_not_answered_from_the_stale_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _spec.spec_path().read_bytes()
    title = _spec.parse_yaml(raw)["info"]["title"]
    edited = tmp_path / "openapi.yaml"
    edited.write_bytes(raw.replace(f"title: {title}".encode(), b"title: Edited title", 1))
    monkeypatch.setattr(_spec, "spec_path", lambda: edited)
    assert _spec._parse_spec()["info"]["title"] == "Edited title"


@pytest.mark.parametrize("twin", ["missing", "not json", "another spec's"])
def test_a_missing_or_broken_twin_falls_back_to_the_yaml(
    twin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _spec.spec_path().read_bytes()
    fake_twin = tmp_path / _spec.SPEC_CACHE
    if twin == "not json":
        fake_twin.write_text("{cut short", encoding="utf-8")
    elif twin == "another spec's":
        fake_twin.write_text(
            json.dumps({"openapi_yaml_sha256": _spec.spec_sha256(b"other"), "spec": {"info": {}}}),
            encoding="utf-8",
        )
    monkeypatch.setattr(_spec, "cache_path", lambda: fake_twin)
    parsed: list[bytes] = []
    real = _spec.parse_yaml

    def counted(data: bytes) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(_spec, "parse_yaml", counted)
    assert _spec._parse_spec() == real(raw)
    assert parsed == [raw]
