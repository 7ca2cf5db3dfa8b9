"""Benchmarks and long-running comparisons (not part of the test suite)."""
