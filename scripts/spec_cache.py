"""Write the JSON twin of openapi.yaml the client reads at run time, or check that it is current.

    python scripts/spec_cache.py          # rewrite wrapper/comet_replicate/_openapi.json
    python scripts/spec_cache.py --check  # exit 1 if it is missing or not made from openapi.yaml

The client parses openapi.yaml once per process; PyYAML's import and parse cost ~30 ms of CPU, the
JSON twin ~0.4 ms. The twin records the sha256 of the YAML it was made from, and the client uses it
only for exactly those bytes (`comet_replicate._spec._parse_spec`), so a stale twin costs time, never
correctness; `tests/wrapper/test_spec_cache.py` fails while it is stale. Refuses a spec that JSON
cannot carry unchanged (a non-string key, a date).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "wrapper"))

from comet_replicate._spec import cache_path, parse_yaml, spec_sha256  # noqa: E402

TARGET = cache_path()


def twin(raw: bytes) -> str:
    """The twin's text for openapi.yaml's bytes `raw`."""
    spec = parse_yaml(raw)
    text = json.dumps(
        {"openapi_yaml_sha256": spec_sha256(raw), "spec": spec},
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )
    if json.loads(text)["spec"] != spec:
        raise SystemExit("spec_cache: openapi.yaml holds values JSON cannot carry unchanged")
    return text + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the twin is missing or stale")
    args = parser.parse_args()
    wanted = twin((ROOT / "openapi.yaml").read_bytes())
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else None
        if current != wanted:
            print(f"spec_cache: {TARGET.relative_to(ROOT)} is stale: run python scripts/spec_cache.py")
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
