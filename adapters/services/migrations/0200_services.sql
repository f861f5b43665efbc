-- Tables of the social insurance services: cards and their events, e-voucher tokens,
-- employment status and registrations, unemployment benefit, retirement, endowment
-- personal-account entries and self-service verification codes.
-- Written in the SQL that PostgreSQL and SQLite share. Money columns are integer fen.
-- Person numbers refer to srv_person (0100); money moves are journal transactions of the
-- ledger, whose ids the entry tables keep in txn_id.

CREATE TABLE IF NOT EXISTS svc_card (
    card_no             TEXT PRIMARY KEY,
    psn_no              TEXT NOT NULL,
    application_no      TEXT NOT NULL UNIQUE,
    generation          INTEGER NOT NULL CHECK (generation IN (1, 2)),
    issuing_admdvs      TEXT NOT NULL,
    status              TEXT NOT NULL,
    chip_sn             TEXT,
    bank_code           TEXT,
    bank_account        TEXT,
    replaces_card_no    TEXT REFERENCES svc_card (card_no),
    replaced_by_card_no TEXT REFERENCES svc_card (card_no),
    CHECK (generation = 1 OR (bank_code IS NOT NULL AND bank_account IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS svc_card_by_person ON svc_card (psn_no);

-- One row per state a card entered, in order; seq 1 is the application.
CREATE TABLE IF NOT EXISTS svc_card_event (
    card_no     TEXT NOT NULL REFERENCES svc_card (card_no),
    seq         INTEGER NOT NULL,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL,
    event_date  TEXT NOT NULL,               -- yyyy-MM-dd
    operator    TEXT NOT NULL,               -- institution code or 'cli'
    PRIMARY KEY (card_no, seq)
);

-- Electronic medical insurance voucher tokens (mdtrt_cert_type 01) issued to a person.
CREATE TABLE IF NOT EXISTS svc_ecard_token (
    token       TEXT PRIMARY KEY,
    psn_no      TEXT NOT NULL,
    expires_at  TEXT NOT NULL                -- yyyy-MM-dd HH:mm:ss
);

CREATE TABLE IF NOT EXISTS svc_employment (
    psn_no      TEXT PRIMARY KEY,
    status      TEXT NOT NULL,               -- none | employed | unemployed | retired
    since       TEXT NOT NULL                -- yyyy-MM-dd
);

-- Every registration: job, unemployment, benefit, training, retirement.
CREATE TABLE IF NOT EXISTS svc_employment_event (
    psn_no      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    event_date  TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}',  -- JSON: employer, course, benefit id...
    PRIMARY KEY (psn_no, seq)
);

CREATE TABLE IF NOT EXISTS svc_benefit_claim (
    claim_id        TEXT PRIMARY KEY,
    psn_no          TEXT NOT NULL,
    admdvs          TEXT NOT NULL,
    contribution_months INTEGER NOT NULL,
    months          INTEGER NOT NULL,
    monthly_benefit BIGINT NOT NULL,
    medical_contribution_monthly BIGINT NOT NULL,
    first_period    TEXT NOT NULL,           -- yyyy-MM
    last_period     TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS svc_benefit_claim_by_person ON svc_benefit_claim (psn_no);

CREATE TABLE IF NOT EXISTS svc_benefit_payment (
    claim_id    TEXT NOT NULL REFERENCES svc_benefit_claim (claim_id),
    period      TEXT NOT NULL,               -- yyyy-MM
    benefit     BIGINT NOT NULL,
    medical_contribution BIGINT NOT NULL,
    txn_id      BIGINT NOT NULL,
    PRIMARY KEY (claim_id, period)
);

CREATE TABLE IF NOT EXISTS svc_retirement (
    psn_no          TEXT PRIMARY KEY,
    effective_date  TEXT NOT NULL,           -- first day settled as a retiree
    retired_psn_type TEXT NOT NULL,
    previous_psn_type TEXT NOT NULL
);

-- Endowment personal account: contributions (period yyyy-MM) and interest (period yyyy).
CREATE TABLE IF NOT EXISTS svc_pension_entry (
    psn_no      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('contribution', 'interest')),
    period      TEXT NOT NULL,
    admdvs      TEXT NOT NULL,
    base        BIGINT NOT NULL,             -- contribution base, or the opening balance for interest
    rate        INTEGER NOT NULL,            -- 1e-4
    amount      BIGINT NOT NULL,
    txn_id      BIGINT,                      -- NULL only for a zero interest amount
    PRIMARY KEY (psn_no, kind, period)
);

-- Self-service verification codes, stored as salted SHA-256 only.
CREATE TABLE IF NOT EXISTS svc_verification (
    psn_no      TEXT PRIMARY KEY,
    code_hash   TEXT NOT NULL,
    salt        TEXT NOT NULL,
    expires_at  TEXT NOT NULL,               -- yyyy-MM-dd HH:mm:ss
    failures    INTEGER NOT NULL DEFAULT 0
);

-- Work-injury cases and the treatment settled against the injury fund.
CREATE TABLE IF NOT EXISTS svc_injury_case (
    case_id         TEXT PRIMARY KEY,
    psn_no          TEXT NOT NULL,
    injury_date     TEXT NOT NULL,
    description     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('applied', 'recognized', 'rejected')),
    decided_date    TEXT
);

CREATE TABLE IF NOT EXISTS svc_injury_settlement (
    case_id         TEXT NOT NULL REFERENCES svc_injury_case (case_id),
    msgid           TEXT NOT NULL,
    fixmedins_code  TEXT NOT NULL,
    setl_date       TEXT NOT NULL,
    policy_id       TEXT NOT NULL,
    medfee_sumamt   BIGINT NOT NULL,
    fund_pay_sumamt BIGINT NOT NULL,
    psn_cash_pay    BIGINT NOT NULL,
    txn_id          BIGINT,                  -- NULL only when nothing was charged
    PRIMARY KEY (case_id, msgid)
);
