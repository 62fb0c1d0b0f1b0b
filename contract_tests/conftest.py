"""Shared test settings: the same hypothesis profiles as tests/ (ci, dev, mutation)."""

from tests import _hypothesis_profiles

_hypothesis_profiles.load()
