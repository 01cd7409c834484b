"""Benchmarks: each runs as `python -m bench.<name>` against a local stack it starts itself."""
