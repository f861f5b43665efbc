"""Auditor replay: re-run recorded settlements under the rules in force and compare every figure.

The package is pure domain code. ``record`` defines the replay record (the export format),
``resolve`` finds the policy and catalogue values in force, ``compare`` replays one
partition of records through the kernel's batch entry point, ``columns`` is the
columnar form of the records (the columnar export) and ``compare_columns`` replays a
range of it with array operations and the same results, ``chain`` computes the
tamper-evident hash chain, ``whatif`` derives adjustments under other rules, and
``reconcile`` computes the 3201/3202 reconciliation figures.
"""
