"""`comet_replicate_api.models` imports each model's module on first use (the project's
models_init.py.jinja): a client that parses predictions loads only what a Prediction needs, and
every name the package exports still resolves, through attribute access, `from ... import` and `*`."""

from __future__ import annotations

import json
import subprocess
import sys

import comet_replicate_api.models as models
import pytest


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_importing_the_package_loads_no_model_module() -> None:
    code = (
        "import sys, comet_replicate_api.models\n"
        "print(sorted(m for m in sys.modules if m.startswith('comet_replicate_api.models.')))"
    )
    assert _fresh(code) == "[]"


def test_a_prediction_loads_only_the_modules_it_nests() -> None:
    code = (
        "import sys, json\n"
        "from comet_replicate_api.models import Prediction\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('comet_replicate_api.models.'))))"
    )
    loaded = json.loads(_fresh(code))
    assert "comet_replicate_api.models.prediction" in loaded
    assert len(loaded) < len(models.__all__) // 2  # the flux input models are not among them


@pytest.mark.parametrize("name", models.__all__)
def test_every_exported_name_resolves_to_the_class_of_its_module(name: str) -> None:
    value = getattr(models, name)
    assert value.__name__ == name
    assert value.__module__.startswith("comet_replicate_api.models.")
    assert name in dir(models)


def test_star_import_and_unknown_names_behave_as_for_a_plain_package() -> None:
    namespace: dict[str, object] = {}
    exec("from comet_replicate_api.models import *", namespace)
    assert set(models.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="NoSuchModel"):
        models.NoSuchModel  # noqa: B018
    with pytest.raises(ImportError):
        exec("from comet_replicate_api.models import NoSuchModel", {})
