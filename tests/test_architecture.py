"""Import directions that keep the layers apart.

The kernel imports nothing from the project, the domain package never reaches into the
adapters, and the reference model shares no code with the kernel path, so that the
kernel and the model agreeing means something.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNEL_PATH_MODULES = {"settlement._core", "settlement.compiled", "settlement.engine"}


def imported_modules(path: pathlib.Path) -> set[str]:
    """Return the absolute module names a Python source file imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def domain_sources() -> list[pathlib.Path]:
    return sorted((ROOT / "settlement").rglob("*.py"))


@pytest.mark.parametrize("path", domain_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_never_imports_adapters(path):
    offending = {name for name in imported_modules(path) if name.split(".")[0] == "adapters"}
    assert offending == set()


def test_kernel_imports_nothing_from_project():
    for suffix in (".pyx", ".pxd"):
        source = (ROOT / "settlement" / f"_core{suffix}").read_text(encoding="utf-8")
        for line in source.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ", "cimport ")):
                assert "settlement" not in stripped, f"_core{suffix}: {stripped}"
                assert "adapters" not in stripped, f"_core{suffix}: {stripped}"


def test_reference_model_shares_no_kernel_code():
    names = imported_modules(ROOT / "settlement" / "reference.py")
    shared = {name for name in names if any(name.startswith(m) for m in KERNEL_PATH_MODULES)}
    assert shared == set()
