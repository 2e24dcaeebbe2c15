"""Benchmarks: tables of time and memory, printed by ``make bench`` (``python -m benchmarks``).

Not tests: they measure and print, and assert nothing about speed. Each table is a module with
``main(argv) -> int``: ``stages`` (full Adult data), ``scale`` (Census-Income KDD at 10k, 100k
and 1M rows, drift against Evidently) and, when present, ``serving``.
"""
