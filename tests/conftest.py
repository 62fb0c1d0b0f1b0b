"""Shared test settings: the hypothesis profiles of tests/_hypothesis_profiles.py, and a fresh
unknown-field warning registry per test (it warns once per process by design, so without this a test's
outcome would depend on which tests ran before it in the same process)."""

import pytest
from comet_replicate import _inputs

from tests import _hypothesis_profiles

_hypothesis_profiles.load()


@pytest.fixture(autouse=True)
def fresh_warning_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "_WARNED", set())
