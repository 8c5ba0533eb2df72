"""Benchmarks of offhours (run as programs, not tests)."""
