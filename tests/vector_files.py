"""Locate the worked claim vectors and write edited copies of them for tests.

The vectors live in the folder named by SETTLEMENT_EXAMPLES, by default
``<repo>/../shared/reference/examples``. A missing folder raises instead of skipping, so
a checkout without the vectors cannot pass by accident.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = Path(os.environ.get("SETTLEMENT_EXAMPLES", REPO.parent / "shared" / "reference" / "examples"))


def vector_paths() -> list[Path]:
    paths = sorted(EXAMPLES.glob("ex*.json"))
    if not paths:
        raise FileNotFoundError(f"no claim vectors ex*.json in {EXAMPLES}; set SETTLEMENT_EXAMPLES")
    return paths


def vector_path(example_id: str) -> Path:
    """Return the vector whose file name starts with ``example_id`` (``"ex03"``)."""
    matches = [path for path in vector_paths() if path.name.startswith(f"{example_id}-")]
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one vector {example_id}-*.json in {EXAMPLES}, found {len(matches)}")
    return matches[0]


def load_vector(example_id: str) -> dict[str, Any]:
    return json.loads(vector_path(example_id).read_text(encoding="utf-8"))


def edited_vector(tmp_path: Path, example_id: str, change: Callable[[dict[str, Any]], None], name: str | None = None) -> Path:
    """Write a copy of a vector with ``change`` applied and return its path."""
    data = load_vector(example_id)
    change(data)
    target = tmp_path / (name or f"{example_id}-edited.json")
    target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target
