"""The kernel's array layouts agree with the shared types, its stub and the wrapper.

``_core`` names its vectors itself (it imports nothing from the project), so these tests
are what keeps its output order, accumulator order and column order in step with
``settlement.types``.
"""

from __future__ import annotations

import ast
import pathlib
import types

import numpy as np
import pytest

from settlement import _core, engine, trace
from settlement.compiled import ACCUMULATOR_INDEX, compile_params
from settlement.types import (
    ACCUMULATOR_KEYS,
    RATIO_SCALE,
    SETTLEMENT_OUTPUT_FIELDS,
    AccountParams,
    Band,
    ChargeClass,
    LineResult,
    SchemeParams,
    SettlementOutputs,
    TraceStep,
)

CORE_DIR = pathlib.Path(_core.__file__).resolve().parent
PREFIXES = ("P_", "A_", "L_", "LR_", "O_", "T_", "TS_", "S_", "F_", "DEDC_")


def core_constants(prefix: str) -> dict[str, int]:
    return {name: getattr(_core, name) for name in dir(_core) if name.startswith(prefix) and not name.startswith(
        tuple(other for other in PREFIXES if other != prefix and other.startswith(prefix)))}


def test_output_names_follow_shared_types() -> None:
    assert _core.OUTPUT_NAMES == (*SETTLEMENT_OUTPUT_FIELDS, "pool_prop_selfpay")
    assert _core.OUTPUT_NAMES == SettlementOutputs.__struct_fields__


def test_output_indices_follow_names() -> None:
    for index, name in enumerate(_core.OUTPUT_NAMES):
        assert getattr(_core, f"O_{name.upper()}") == index, name
    assert _core.O_POOL_PROP_SELFPAY == len(SETTLEMENT_OUTPUT_FIELDS)


def test_output_extras_follow_public_outputs() -> None:
    indices = sorted(core_constants("O_").values())
    assert indices == list(range(_core.O_WIDTH + 1))


def test_accumulator_indices_follow_shared_keys() -> None:
    assert _core.ACCUMULATOR_NAMES == ACCUMULATOR_KEYS
    for index, name in enumerate(ACCUMULATOR_KEYS):
        assert getattr(_core, f"A_{name.upper()}") == index, name
        assert ACCUMULATOR_INDEX[name] == index, name
    assert _core.A_COUNT == len(ACCUMULATOR_KEYS)


def test_line_result_columns_follow_line_result_fields() -> None:
    columns = ["LR_AMOUNT", "LR_FULAMT_OWNPAY", "LR_OVERLMT", "LR_PRESELFPAY", "LR_INSCP"]
    fields = LineResult.__struct_fields__[1:]  # after feedetl_sn
    assert len(columns) == len(fields) == _core.LR_WIDTH
    for index, (column, field) in enumerate(zip(columns, fields, strict=True)):
        assert getattr(_core, column) == index, field


def test_trace_columns_follow_trace_step_fields() -> None:
    for index, field in enumerate(TraceStep.__struct_fields__):
        assert getattr(_core, f"T_{field.upper()}") == index, field
    assert _core.T_WIDTH == len(TraceStep.__struct_fields__)


def test_trace_step_codes_have_names_and_formatters() -> None:
    codes = core_constants("TS_")
    assert sorted(_core.TRACE_STEP_NAMES) == sorted(codes.values())
    for code_name, code in codes.items():
        name = _core.TRACE_STEP_NAMES[code]
        assert code_name == f"TS_{name.upper()}"
        assert trace.format_step(TraceStep(name, 0, 0, 0, 0, 0))


def test_charge_class_codes_match_kernel() -> None:
    # The kernel reads the national chrgitm_lv code: 1 A, 2 B, 3 C (fully self-paid).
    assert [int(member) for member in ChargeClass] == [1, 2, 3]


def test_status_codes_unique_and_named() -> None:
    codes = core_constants("S_")
    assert len(set(codes.values())) == len(codes)
    assert engine.STATUS_NAMES == {code: name for name, code in codes.items()}


def test_parameter_slots_do_not_overlap() -> None:
    slots = {index: name for name, index in core_constants("P_").items() if name != "P_WIDTH"}
    widths = {"P_BAND_LOWER": _core.MAX_BANDS, "P_BAND_RATIO": _core.MAX_BANDS,
              "P_CII_BAND_FROM": _core.MAX_CII_BANDS, "P_CII_BAND_RATIO": _core.MAX_CII_BANDS}
    taken: dict[int, str] = {}
    for index, name in sorted(slots.items()):
        for offset in range(widths.get(name, 1)):
            assert index + offset not in taken, f"{name} overlaps {taken.get(index + offset)}"
            taken[index + offset] = name
    assert sorted(taken) == list(range(_core.P_WIDTH))


def test_kernel_ratio_scale_matches_types() -> None:
    assert _core.RATIO_SCALE == RATIO_SCALE


def test_kernel_rejects_bad_parameter_rows() -> None:
    params = SchemeParams(
        "contract", "outpatient_general", True, "none", 0, 0, None, None, (Band(0, 7000),), None, None,
        None, None, None, None, None, None, AccountParams(True, True, True, False),
    )
    row = compile_params(params).copy()
    assert _core.check_param_row(row) == _core.S_OK

    for index, value in ((_core.P_BAND_COUNT, _core.MAX_BANDS + 1), (_core.P_DEDC_ACC, _core.A_COUNT),
                         (_core.P_BAND_RATIO, RATIO_SCALE + 1), (_core.P_FUND_CAP, -2)):
        broken = row.copy()
        broken[index] = value
        assert _core.check_param_row(broken) == _core.S_BAD_PARAMS, index
        assert _core.Workspace().settle(broken, 0, 0) == _core.S_BAD_PARAMS


def test_workspace_rejects_wrong_arrays() -> None:
    workspace = _core.Workspace(4)
    with pytest.raises(ValueError, match="int64"):
        workspace.settle(np.zeros(_core.P_WIDTH, dtype=np.int32), 0, 0)
    with pytest.raises(ValueError, match="items"):
        workspace.settle(np.zeros(_core.P_WIDTH + 1, dtype=np.int64), 0, 0)
    with pytest.raises(ValueError, match="n_lines"):
        workspace.settle(np.zeros(_core.P_WIDTH, dtype=np.int64), 5, 0)


def test_stub_declares_exactly_the_public_names() -> None:
    tree = ast.parse((CORE_DIR / "_core.pyi").read_text(encoding="utf-8"))
    declared = set()
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            declared.add(node.name)
    public = {name for name, value in vars(_core).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert declared == public


@pytest.mark.parametrize("name", ["_core.pyx", "_core.pxd", "_arith.pxi", "_claim.pxi"])
def test_kernel_sources_import_nothing_from_project(name: str) -> None:
    for line in (CORE_DIR / name).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(("import ", "from ", "cimport ", "include ")):
            assert "settlement" not in stripped, f"{name}: {stripped}"
            assert "adapters" not in stripped, f"{name}: {stripped}"


def test_kernel_holds_no_project_module() -> None:
    modules = {value.__name__ for value in vars(_core).values() if isinstance(value, types.ModuleType)}
    assert modules <= {"builtins", "numpy"}
