"""Benchmarks of the settlement kernel, the ledger and the server, with their shared data generator.

Run them with pytest from the repository root. docs/benchmarks.md gives the commands and the results.
"""
