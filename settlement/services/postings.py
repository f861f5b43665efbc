"""Journal postings of the services, on the ledger's existing account kinds.

Social insurance types use the national codes: 110 enterprise employees' endowment
insurance, 210 unemployment insurance, 310 employee basic medical insurance. A ``fund``
account's balance is what the fund paid out, net, so money a fund receives is a credit.

========================================  ===========================================
posting                                   meaning
========================================  ===========================================
debit  ``fund:{admdvs}:210:210100``       unemployment fund pays a month of benefit
credit ``psn_cash:{admdvs}:210``          cash paid to the person (the account's
                                          normal side is cash paid by persons)
debit  ``fund:{admdvs}:210:210200``       unemployment fund pays the medical contribution
credit ``fund:{admdvs}:310:310100``       the medical pooled fund receives it
debit  ``psn_cash:{admdvs}:110``          the person pays an endowment contribution
credit ``fund:{admdvs}:110:110200``       the endowment personal-account fund holds it
debit  ``fund:{admdvs}:110:110100``       the endowment pooled fund pays the interest
credit ``fund:{admdvs}:110:110200``       credited to the personal-account fund
========================================  ===========================================

NOTE: the ledger has no per-person endowment account kind yet, so the journal holds the
region's personal-account fund and each person's share is kept by the services tables,
with the journal transaction id of every entry.
"""

from __future__ import annotations

from settlement.store import AdjustmentRequest, Posting

__all__ = [
    "ORIGIN_PENSION",
    "ORIGIN_UNEMPLOYMENT",
    "benefit_month_request",
    "pension_contribution_request",
    "pension_interest_request",
]

ORIGIN_UNEMPLOYMENT = "svc-unemployment"
ORIGIN_PENSION = "svc-pension"

PENSION_INSUTYPE = "110"
UNEMPLOYMENT_INSUTYPE = "210"
MEDICAL_INSUTYPE = "310"


def benefit_month_request(claim_id: str, period: str, admdvs: str, benefit: int, medical_contribution: int) -> AdjustmentRequest:
    """Return one month of unemployment benefit, with the medical contribution the fund pays for it."""
    postings = [
        Posting(f"fund:{admdvs}:{UNEMPLOYMENT_INSUTYPE}:210100", debit=benefit),
        Posting(f"psn_cash:{admdvs}:{UNEMPLOYMENT_INSUTYPE}", credit=benefit),
    ]
    if medical_contribution:
        postings += [
            Posting(f"fund:{admdvs}:{UNEMPLOYMENT_INSUTYPE}:210200", debit=medical_contribution),
            Posting(f"fund:{admdvs}:{MEDICAL_INSUTYPE}:310100", credit=medical_contribution),
        ]
    return AdjustmentRequest(
        msgid=f"benefit/{claim_id}/{period}",
        reason=f"失业保险金 {period}（unemployment benefit）",
        postings=tuple(postings),
        origin=ORIGIN_UNEMPLOYMENT,
    )


def pension_contribution_request(psn_no: str, period: str, admdvs: str, amount: int) -> AdjustmentRequest:
    """Return a monthly endowment contribution into the personal-account fund."""
    return AdjustmentRequest(
        msgid=f"contribution/{psn_no}/{period}",
        reason=f"养老保险个人缴费 {period}（endowment contribution）",
        postings=(
            Posting(f"psn_cash:{admdvs}:{PENSION_INSUTYPE}", debit=amount),
            Posting(f"fund:{admdvs}:{PENSION_INSUTYPE}:110200", credit=amount),
        ),
        origin=ORIGIN_PENSION,
    )


def pension_interest_request(psn_no: str, year: int, admdvs: str, amount: int) -> AdjustmentRequest:
    """Return a year's interest credited to the personal-account fund."""
    return AdjustmentRequest(
        msgid=f"interest/{psn_no}/{year}",
        reason=f"养老保险个人账户 {year} 年记账利息（yearly interest）",
        postings=(
            Posting(f"fund:{admdvs}:{PENSION_INSUTYPE}:110100", debit=amount),
            Posting(f"fund:{admdvs}:{PENSION_INSUTYPE}:110200", credit=amount),
        ),
        origin=ORIGIN_PENSION,
    )
