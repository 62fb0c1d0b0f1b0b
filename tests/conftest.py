"""Shared test settings: the hypothesis profiles of tests/_hypothesis_profiles.py."""

from tests import _hypothesis_profiles

_hypothesis_profiles.load()
