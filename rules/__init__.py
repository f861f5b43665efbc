"""Bundled rule data (policies and catalogue), installed as the package ``settlement_rules``.

Only data lives here; ``settlement.paths.bundled_rules_dir()`` returns this directory.
"""
