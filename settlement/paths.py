"""Locations of data files shipped with the engine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["bundled_rules_dir"]

# The repository's rules/ folder is installed as the package ``settlement_rules``.
_RULES_PACKAGE = "settlement_rules"


def bundled_rules_dir() -> Path:
    """Return the directory of the bundled rules (policies and catalogue).

    Works for a normal install, an editable install (where the package maps back to the
    repository's ``rules/``) and a source checkout on ``PYTHONPATH`` without any install.
    Raises ``FileNotFoundError`` when none of them has the rules.
    """
    spec = importlib.util.find_spec(_RULES_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location, "policies").is_dir():
                return Path(location)

    checkout = Path(__file__).resolve().parent.parent / "rules"
    if (checkout / "policies").is_dir():
        return checkout
    raise FileNotFoundError(f"bundled rules not found: package {_RULES_PACKAGE} is not installed and {checkout} does not exist")
