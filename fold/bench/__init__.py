"""Benchmarks (`fold bench`): measured, not asserted."""
