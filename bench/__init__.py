"""Benchmarks that print tables; run by hand or as a smoke run, never as timed assertions."""
