"""Benchmarks of kolo_django's recording overhead, storage and generation.

Run ``python -m benchmarks`` from the repository root; ``--help`` lists the
options and docs/performance.md explains every figure.
"""
