"""Entry point of ``python -m benchmarks``."""

from benchmarks._runner import main

raise SystemExit(main())
