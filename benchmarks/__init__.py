"""Benchmarks: the seed's three analyses on clickstream, PyFlink and DuckDB (see README.md)."""
