-- State of the national-interface server: institutions and their keys, insured persons and
-- cards, sign-ins, seen nonces, visits, uploaded fee lines and answered messages.
-- Written in the SQL that PostgreSQL and SQLite share, and safe to apply twice.
-- Money columns are integer fen, prices 1e-6 yuan, quantities and ratios 1e-4.

CREATE TABLE IF NOT EXISTS srv_institution (
    fixmedins_code  TEXT PRIMARY KEY,
    fixmedins_name  TEXT NOT NULL,
    kind            TEXT NOT NULL,           -- hospital | pharmacy
    hosp_lv         TEXT NOT NULL,           -- community | level1 | level2 | level3 | pharmacy
    admdvs          TEXT NOT NULL,           -- 6-digit division of the institution
    secret          TEXT NOT NULL,
    sign_algorithm  TEXT NOT NULL DEFAULT 'HMAC-SHA256'
);

CREATE TABLE IF NOT EXISTS srv_person (
    psn_no          TEXT PRIMARY KEY,
    psn_cert_type   TEXT NOT NULL,
    certno          TEXT NOT NULL UNIQUE,
    psn_name        TEXT NOT NULL,
    gend            TEXT NOT NULL,
    naty            TEXT,
    brdy            TEXT NOT NULL,
    insutype        TEXT NOT NULL,
    psn_type        TEXT NOT NULL,
    psn_insu_stas   TEXT NOT NULL DEFAULT '1',
    psn_insu_date   TEXT,
    cvlserv_flag    TEXT NOT NULL DEFAULT '0',
    maf_type        TEXT,
    insuplc_admdvs  TEXT NOT NULL,
    emp_name        TEXT
);

CREATE TABLE IF NOT EXISTS srv_card (
    card_no         TEXT PRIMARY KEY,
    psn_no          TEXT NOT NULL REFERENCES srv_person (psn_no),
    card_sn         TEXT
);

CREATE TABLE IF NOT EXISTS srv_sign_in (
    sign_no         TEXT PRIMARY KEY,
    fixmedins_code  TEXT NOT NULL,
    opter_no        TEXT NOT NULL,
    sign_time       TEXT NOT NULL,
    sign_out_time   TEXT
);

CREATE TABLE IF NOT EXISTS srv_nonce (
    fixmedins_code  TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    seen_at         BIGINT NOT NULL,         -- unix seconds, for pruning
    PRIMARY KEY (fixmedins_code, nonce)
);

CREATE TABLE IF NOT EXISTS srv_visit (
    mdtrt_id        TEXT PRIMARY KEY,
    fixmedins_code  TEXT NOT NULL,
    psn_no          TEXT NOT NULL,
    insutype        TEXT NOT NULL,
    med_type        TEXT NOT NULL,
    begntime        TEXT NOT NULL,
    mdtrt_cert_type TEXT NOT NULL,
    ipt_otp_no      TEXT,
    dise_codg       TEXT,
    dise_name       TEXT,
    detail          TEXT NOT NULL DEFAULT '{}',  -- doctor, department, diagnoses (JSON)
    registered_by   TEXT NOT NULL,           -- msgid of the 2201 or pharmacy sale
    cancelled_by    TEXT                     -- msgid of the 2202, NULL while live
);

CREATE INDEX IF NOT EXISTS srv_visit_by_institution ON srv_visit (fixmedins_code, psn_no);

CREATE TABLE IF NOT EXISTS srv_fee_line (
    line_id         TEXT PRIMARY KEY,        -- mdtrt_id + '/' + feedetl_sn + '/' + uploading msgid
    mdtrt_id        TEXT NOT NULL REFERENCES srv_visit (mdtrt_id),
    feedetl_sn      TEXT NOT NULL,
    chrg_bchno      TEXT NOT NULL,
    init_feedetl_sn TEXT,
    rxno            TEXT,
    fee_ocur_time   TEXT NOT NULL,
    med_list_codg   TEXT NOT NULL,
    medins_list_codg TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    price_micro     BIGINT NOT NULL,
    quantity        BIGINT NOT NULL,
    charge_class    INTEGER NOT NULL,
    selfpay_prop    INTEGER NOT NULL,
    price_cap_micro BIGINT,
    fulamt_ownpay_amt BIGINT NOT NULL,
    overlmt_amt     BIGINT NOT NULL,
    preselfpay_amt  BIGINT NOT NULL,
    inscp_scp_amt   BIGINT NOT NULL,
    seq             INTEGER NOT NULL,        -- upload order inside the visit
    uploaded_by     TEXT NOT NULL,
    cancelled_by    TEXT                     -- msgid of the 2205, NULL while live
);

-- One live line per serial in a visit; a cancelled serial may be uploaded again.
CREATE UNIQUE INDEX IF NOT EXISTS srv_fee_line_live_sn ON srv_fee_line (mdtrt_id, feedetl_sn) WHERE cancelled_by IS NULL;
CREATE INDEX IF NOT EXISTS srv_fee_line_batch ON srv_fee_line (mdtrt_id, chrg_bchno);

CREATE TABLE IF NOT EXISTS srv_message (
    fixmedins_code  TEXT NOT NULL,
    msgid           TEXT NOT NULL,
    infno           TEXT NOT NULL,
    digest          TEXT NOT NULL,           -- SHA-256 of infno and the canonical input
    output          TEXT NOT NULL,           -- the output node answered, as JSON
    answered_at     TEXT NOT NULL,
    PRIMARY KEY (fixmedins_code, msgid)
);
