"""Benchmarks: comet_replicate against raw httpx and replicate 1.0.7 on the local emulator.

Run with ``python -m benchmarks`` (or ``tox -e bench``). The runner starts the emulator in its own
process, runs every contender in a fresh subprocess (so imports, caches and CPU accounting of one do
not leak into another), interleaves repetitions, and rewrites ``benchmarks/RESULTS.md``,
``benchmarks/results.json`` and the PNG plots. Absolute times on a shared machine are noise; the
ratios between contenders measured in the same run are what the targets are about.
"""
