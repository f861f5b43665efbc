"""Work-injury treatment: the injury policy, the kernel claim and its journal postings.

A recognized work injury settles its treatment with the kernel under the region's injury
policy (``rules/services/injury/*.json``, the policy file format of ``rules/policies``):
by default the injury fund pays 100% of the in-scope catalogue amount with no deductible
and no personal account. The postings mirror a medical settlement's, on insurance type 410
(work injury in the social insurance type dictionary):

* debit ``fund:{admdvs}:410:410100`` and credit ``medins_payable:{fixmedins_code}`` with what the fund pays;
* debit ``psn_cash:{admdvs}:410`` and credit ``medins_cash:{fixmedins_code}`` with what the person pays.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from settlement.catalog import Catalog
from settlement.errors import ErrorCode, SettlementError
from settlement.policy.loader import read_policy_file
from settlement.policy.model import Policy
from settlement.store import AdjustmentRequest, Posting
from settlement.types import (
    ChargeClass,
    ClaimInput,
    FeeLine,
    SchemeParams,
    SettlementOutputs,
)

__all__ = ["INJURY_INSUTYPE", "claim_input", "injury_postings", "load_injury_policies", "policy_on"]

INJURY_INSUTYPE = "410"
INJURY_FUND_PAY_TYPE = "410100"
ORIGIN_INJURY = "svc-injury"


def load_injury_policies(directory: Path) -> list[Policy]:
    """Read every ``*.json`` injury policy of ``directory``; raise RULE_FILE_INVALID on a bad file."""
    return [read_policy_file(path, path.name) for path in sorted(directory.glob("*.json"))]


def policy_on(policies: list[Policy], admdvs: str, on_date: datetime.date) -> Policy:
    """Return the injury policy of a region in force on ``on_date``, or raise NO_POLICY_IN_FORCE."""
    for policy in policies:
        if policy.admdvs == admdvs and policy.in_force(on_date):
            return policy
    raise SettlementError(ErrorCode.NO_POLICY_IN_FORCE, field="admdvs/insutype", value=f"{admdvs}/{INJURY_INSUTYPE}", detail=on_date.isoformat())


def claim_input(params: SchemeParams, catalog: Catalog, lines: list[tuple[str, str, int, int]], on_date: datetime.date) -> ClaimInput:
    """Build the kernel claim from (serial, catalogue code, unit price in 1e-6 yuan, quantity in 1e-4).

    An item outside the catalogue in force on ``on_date`` is settled as class C, so the
    person pays it.
    """
    fee_lines = []
    for index, (serial, code, price_micro, quantity) in enumerate(lines):
        try:
            entry = catalog.lookup(code, on_date, field=f"lines[{index}].med_list_codg")
        except SettlementError as error:
            if error.code is not ErrorCode.UNKNOWN_CATALOG_CODE:
                raise
            entry = None
        if entry is None or entry.charge_class is ChargeClass.C:
            fee_lines.append(FeeLine(serial, code, ChargeClass.C, price_micro, quantity))
            continue
        selfpay = entry.selfpay_prop if entry.charge_class is ChargeClass.B else 0
        fee_lines.append(FeeLine(serial, code, entry.charge_class, price_micro, quantity, selfpay, entry.price_cap_micro))
    return ClaimInput(params=params, lines=tuple(fee_lines), accumulators={}, acct_used=False)


def injury_postings(case_id: str, msgid: str, admdvs: str, fixmedins_code: str, outputs: SettlementOutputs, reason: str) -> AdjustmentRequest:
    """Return the journal transaction of one injury settlement (zero amounts give no line)."""
    fund, cash = outputs.fund_pay_sumamt, outputs.psn_cash_pay
    postings = []
    if fund:
        postings += [Posting(f"fund:{admdvs}:{INJURY_INSUTYPE}:{INJURY_FUND_PAY_TYPE}", debit=fund), Posting(f"medins_payable:{fixmedins_code}", credit=fund)]
    if cash:
        postings += [Posting(f"psn_cash:{admdvs}:{INJURY_INSUTYPE}", debit=cash), Posting(f"medins_cash:{fixmedins_code}", credit=cash)]
    return AdjustmentRequest(msgid=f"injury/{case_id}/{msgid}", reason=reason, postings=tuple(postings), origin=ORIGIN_INJURY)
