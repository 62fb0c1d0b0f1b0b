"""Hypothesis profiles for every suite, selected with HYPOTHESIS_PROFILE (default ci).

ci: bounded and derandomized, no deadline (CI machines are shared and noisy); dev: deeper local runs;
mutation: ci without shrinking, for contract_tests/mutation.py, where the first failing example is the
verdict and shrinking it would take minutes on a 2-core machine.
"""

import os

from hypothesis import HealthCheck, Phase, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, suppress_health_check=_QUIET, print_blob=True
)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=_QUIET)
settings.register_profile(
    "mutation", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate]
)


def load() -> None:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
