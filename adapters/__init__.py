"""The engine's edges: command line, protocol server, ledger stores, file readers and writers.

Adapters depend on the ``settlement`` domain package; the domain never imports them.
"""
