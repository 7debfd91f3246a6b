"""Benchmarks: the seed's three analyses and an interval join, on clickstream, PyFlink and DuckDB
(see README.md)."""
