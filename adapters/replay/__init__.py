"""Edges of the auditor replay: record files, the ledger reader, runners, progress and reports."""
