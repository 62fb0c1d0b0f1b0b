"""Building a prediction: everything fixed at creation (id, seed, durations, output files).

Its own RNG draws ids, seeds and durations, so a seed makes the same predictions whatever faults are on.
"""

from __future__ import annotations

import random
from collections.abc import Container, Mapping
from typing import Any, TypeGuard

from ._config import EmulatorConfig
from ._images import FORMATS, ImageSpec, output_size
from ._predictions import Prediction
from ._spec import ModelInfo, Spec

ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
MAX_OUTPUTS = 16


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_or(value: Any, default: int) -> int:
    """`value` when it is an int (not a bool), else `default`."""
    return value if _is_int(value) else default


def with_defaults(info: ModelInfo | None, inp: Mapping[str, Any]) -> dict[str, Any]:
    """The input with the schema's defaults filled in (what the model would actually use)."""
    effective = dict(inp)
    if info is not None:
        for name, prop in info.properties.items():
            if name not in effective and isinstance(prop, Mapping) and "default" in prop:
                effective[name] = prop["default"]
    return effective


class PredictionBuilder:
    """Draws what a new prediction will be; the store and the handlers decide what happens to it."""

    def __init__(self, config: EmulatorConfig, spec: Spec) -> None:
        self.config = config
        self.spec = spec
        self.reseed()

    def reseed(self) -> None:
        seed = self.config.seed
        self.rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()

    def new_id(self, taken: Container[str]) -> str:
        while True:
            pid = "".join(self.rng.choice(ID_ALPHABET) for _ in range(26))
            if pid not in taken:
                return pid

    def durations(self, model: str, inp: Mapping[str, Any]) -> tuple[float, float]:
        """(queue, run) emulator seconds for one prediction."""
        if self.config.duration_fn is not None:
            queue_s, run_s = self.config.duration_fn(model, inp)
            return max(0.0, float(queue_s)), max(0.0, float(run_s))
        timing = self.config.timing(model)
        if self.config.durations == "fixed":
            return timing.queue_s, timing.run_s
        sigma = timing.spread

        # Mean-preserving lognormal: the average stays at the model's typical time.
        def factor() -> float:
            return self.rng.lognormvariate(-sigma * sigma / 2, sigma)

        return timing.queue_s * factor(), timing.run_s * factor()

    def _images(
        self, model: str, info: ModelInfo | None, effective: Mapping[str, Any], seed: int
    ) -> list[ImageSpec]:
        fmt = effective.get("output_format")
        fmt = fmt if fmt in FORMATS else "webp"
        quality = max(0, min(100, _int_or(effective.get("output_quality"), 80)))
        count = _int_or(effective.get("num_outputs", 1), 1)
        count = min(count if count >= 1 else 1, MAX_OUTPUTS)
        width, height = output_size(model, effective) if info is not None else (1024, 1024)
        prompt = str(effective.get("prompt", ""))
        return [ImageSpec(width, height, str(fmt), quality, prompt, seed, i) for i in range(count)]

    def build(
        self,
        model: str,
        inp: dict[str, Any],
        *,
        base_url: str,
        prefix: str,
        now: float,
        taken: Container[str],
        fail_message: str | None = None,
    ) -> Prediction:
        """A new prediction created at emulator time `now`."""
        info = self.spec.models.get(model)
        effective = with_defaults(info, inp)
        given = effective.get("seed")
        seed = given if _is_int(given) else self.rng.randrange(2**31)
        images = self._images(model, info, effective, seed)
        queue_s, run_s = self.durations(model, inp)
        steps = effective.get("num_inference_steps")
        return Prediction(
            id=self.new_id(taken),
            model=model,
            input=inp,
            effective=effective,
            created_at=now,
            queue_s=queue_s,
            run_s=run_s,
            seed=seed,
            images=images,
            output_is_list=info.output_is_list if info is not None else True,
            base_url=base_url,
            api_prefix=prefix,
            retention_s=self.config.retention(),
            steps=steps if _is_int(steps) else None,
            fail_message=fail_message,
        )
