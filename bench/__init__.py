"""Benchmarks of the real stack: ``python -m bench`` (``make bench``) writes docs/benchmarks.md."""
