-- Ledger schema for SQLite: the same tables as the PostgreSQL schema. Money is INTEGER fen.
--
-- The journal only grows: triggers reject UPDATE and DELETE. Balance at commit works
-- through a deferred foreign key, because SQLite has no deferred triggers: inserting a
-- header opens it in journal_open_transactions, whose rows point at a parent table that
-- is always empty. Lines may be added only to an open transaction. Closing it (deleting
-- its row) is refused unless it balances, and COMMIT fails while any transaction is still
-- open. The store's connections turn foreign keys on (PRAGMA foreign_keys = ON); a
-- connection without it would skip the commit-time check.

CREATE TABLE ledger_accounts (
    account_id INTEGER PRIMARY KEY,
    account_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('fund', 'personal', 'personal_funding', 'medins_payable', 'medins_cash', 'psn_cash')),
    admdvs TEXT NOT NULL DEFAULT '',
    insutype TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    fund_pay_type TEXT NOT NULL DEFAULT '',
    debits_posted INTEGER NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted INTEGER NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_must_not_exceed_credits INTEGER NOT NULL DEFAULT 0 CHECK (debits_must_not_exceed_credits IN (0, 1)),
    CHECK (kind <> 'personal' OR debits_must_not_exceed_credits = 1),
    CHECK (debits_must_not_exceed_credits = 0 OR debits_posted <= credits_posted)
);

CREATE TABLE journal_transactions (
    txn_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('settle', 'cancel', 'deposit', 'adjustment')),
    origin TEXT NOT NULL,
    msgid TEXT NOT NULL,
    reverses_txn_id INTEGER UNIQUE REFERENCES journal_transactions (txn_id),
    request_digest TEXT NOT NULL,
    body BLOB,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    UNIQUE (origin, msgid),
    CHECK ((kind = 'cancel') = (reverses_txn_id IS NOT NULL))
);

CREATE TABLE journal_postings (
    txn_id INTEGER NOT NULL REFERENCES journal_transactions (txn_id),
    seq INTEGER NOT NULL,
    account_id INTEGER NOT NULL REFERENCES ledger_accounts (account_id),
    debit INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (txn_id, seq),
    CHECK (debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0))
);

CREATE TABLE journal_accumulator_deltas (
    txn_id INTEGER NOT NULL REFERENCES journal_transactions (txn_id),
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    acc_key TEXT NOT NULL,
    delta INTEGER NOT NULL CHECK (delta <> 0),
    PRIMARY KEY (txn_id, psn_no, year, acc_key)
);

-- feedetl_sns is a JSON array of strings; record is the msgspec JSON of the record.
CREATE TABLE ledger_settlements (
    txn_id INTEGER PRIMARY KEY REFERENCES journal_transactions (txn_id),
    setl_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('settle', 'cancel')),
    fixmedins_code TEXT NOT NULL,
    msgid TEXT NOT NULL,
    mdtrt_id TEXT NOT NULL,
    chrg_bchno TEXT NOT NULL,
    batch_attempt INTEGER NOT NULL,
    psn_no TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    insutype TEXT NOT NULL,
    med_type TEXT NOT NULL,
    clr_type TEXT NOT NULL,
    clr_optins TEXT NOT NULL,
    setl_time TEXT NOT NULL,
    year INTEGER NOT NULL,
    original_setl_id TEXT,
    request_digest TEXT NOT NULL,
    rule_version TEXT NOT NULL,
    catalog_version TEXT NOT NULL,
    feedetl_sns TEXT NOT NULL,
    medfee_sumamt INTEGER NOT NULL,
    fund_pay_sumamt INTEGER NOT NULL,
    acct_pay INTEGER NOT NULL,
    psn_cash_pay INTEGER NOT NULL,
    record BLOB NOT NULL,
    CHECK ((kind = 'cancel') = (original_setl_id IS NOT NULL))
);

CREATE UNIQUE INDEX ledger_settlements_batch ON ledger_settlements (fixmedins_code, mdtrt_id, chrg_bchno, batch_attempt) WHERE kind = 'settle';
CREATE INDEX ledger_settlements_period ON ledger_settlements (fixmedins_code, setl_time);

CREATE TABLE ledger_accumulators (
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    acc_key TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0),
    PRIMARY KEY (psn_no, year, acc_key)
);

CREATE TABLE journal_open_parent (txn_id INTEGER PRIMARY KEY);

CREATE TABLE journal_open_transactions (
    txn_id INTEGER PRIMARY KEY REFERENCES journal_open_parent (txn_id) DEFERRABLE INITIALLY DEFERRED
);

CREATE TRIGGER journal_open_parent_stays_empty BEFORE INSERT ON journal_open_parent
BEGIN
    SELECT RAISE(ABORT, 'journal_open_parent must stay empty');
END;

CREATE TRIGGER journal_transactions_open AFTER INSERT ON journal_transactions
BEGIN
    INSERT INTO journal_open_transactions (txn_id) VALUES (NEW.txn_id);
END;

CREATE TRIGGER journal_postings_only_open BEFORE INSERT ON journal_postings
WHEN NOT EXISTS (SELECT 1 FROM journal_open_transactions WHERE txn_id = NEW.txn_id)
BEGIN
    SELECT RAISE(ABORT, 'journal lines can only be added to a transaction written in this database transaction');
END;

CREATE TRIGGER journal_close_balanced BEFORE DELETE ON journal_open_transactions
WHEN (SELECT coalesce(sum(debit), 0) - coalesce(sum(credit), 0) FROM journal_postings WHERE txn_id = OLD.txn_id) <> 0
BEGIN
    SELECT RAISE(ABORT, 'journal transaction does not balance');
END;

CREATE TRIGGER journal_transactions_no_update BEFORE UPDATE ON journal_transactions
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER journal_transactions_no_delete BEFORE DELETE ON journal_transactions
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER journal_postings_no_update BEFORE UPDATE ON journal_postings
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER journal_postings_no_delete BEFORE DELETE ON journal_postings
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER journal_accumulator_deltas_no_update BEFORE UPDATE ON journal_accumulator_deltas
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER journal_accumulator_deltas_no_delete BEFORE DELETE ON journal_accumulator_deltas
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER ledger_settlements_no_update BEFORE UPDATE ON ledger_settlements
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
CREATE TRIGGER ledger_settlements_no_delete BEFORE DELETE ON ledger_settlements
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;
