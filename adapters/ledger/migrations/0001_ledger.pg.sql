-- Ledger schema for PostgreSQL: accounts, the append-only journal, settlement records and
-- year-to-date accumulators. Money is BIGINT fen.
--
-- The journal (journal_transactions, journal_postings, journal_accumulator_deltas,
-- ledger_settlements) only grows: triggers reject UPDATE, DELETE and TRUNCATE. Account
-- totals and accumulators are running sums of the journal, kept for fast reads;
-- `settlement ledger verify` recomputes them.

CREATE SEQUENCE journal_txn_id_seq;

CREATE TABLE ledger_accounts (
    account_id BIGSERIAL PRIMARY KEY,
    account_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('fund', 'personal', 'personal_funding', 'medins_payable', 'medins_cash', 'psn_cash')),
    admdvs TEXT NOT NULL DEFAULT '',
    insutype TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    fund_pay_type TEXT NOT NULL DEFAULT '',
    debits_posted BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_must_not_exceed_credits BOOLEAN NOT NULL DEFAULT FALSE,
    -- A personal account can never go below zero.
    CHECK (kind <> 'personal' OR debits_must_not_exceed_credits),
    CHECK (NOT debits_must_not_exceed_credits OR debits_posted <= credits_posted)
);

-- One row per settlement, cancel, deposit or adjustment. (origin, msgid) is the
-- idempotency key; origin is the institution code for requests from an institution.
-- created_xid lets the posting trigger accept lines only for headers of the current
-- database transaction, so nobody can add lines to a committed transaction.
CREATE TABLE journal_transactions (
    txn_id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('settle', 'cancel', 'deposit', 'adjustment')),
    origin TEXT NOT NULL,
    msgid TEXT NOT NULL,
    reverses_txn_id BIGINT,
    request_digest TEXT NOT NULL,
    body BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_xid XID8 NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (origin, msgid),
    CHECK ((kind = 'cancel') = (reverses_txn_id IS NOT NULL))
);

-- A settlement is cancelled at most once.
CREATE UNIQUE INDEX journal_transactions_reverses ON journal_transactions (reverses_txn_id) WHERE reverses_txn_id IS NOT NULL;

-- The journal tables have no foreign keys on purpose: a per-row foreign-key check costs
-- more than the insert itself. Statement triggers below check the same facts with one
-- query per INSERT or COPY statement.
CREATE TABLE journal_postings (
    txn_id BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    account_id BIGINT NOT NULL,
    debit BIGINT NOT NULL DEFAULT 0,
    credit BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (txn_id, seq),
    CHECK (debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0))
);

CREATE TABLE journal_accumulator_deltas (
    txn_id BIGINT NOT NULL,
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    acc_key TEXT NOT NULL,
    delta BIGINT NOT NULL CHECK (delta <> 0),
    PRIMARY KEY (txn_id, psn_no, year, acc_key)
);

-- The full record of each settlement or cancel. feedetl_sns is a JSON array of strings and
-- `record` is the msgspec JSON (UTF-8) of the record.
CREATE TABLE ledger_settlements (
    txn_id BIGINT PRIMARY KEY,
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
    medfee_sumamt BIGINT NOT NULL,
    fund_pay_sumamt BIGINT NOT NULL,
    acct_pay BIGINT NOT NULL,
    psn_cash_pay BIGINT NOT NULL,
    record BYTEA NOT NULL,
    CHECK ((kind = 'cancel') = (original_setl_id IS NOT NULL))
) WITH (toast_tuple_target = 8160);

-- toast_tuple_target keeps records of a few kilobytes inline and uncompressed: compressing
-- each one cost more than all the other columns and indexes of the row together.

-- A charge batch has one settlement per attempt; an attempt after the first needs the
-- earlier ones cancelled, which the store checks under the person's lock. Queries by visit
-- (fixmedins_code, mdtrt_id) on settlements use this index too.
CREATE UNIQUE INDEX ledger_settlements_batch ON ledger_settlements (fixmedins_code, mdtrt_id, chrg_bchno, batch_attempt) WHERE kind = 'settle';
CREATE INDEX ledger_settlements_period ON ledger_settlements (fixmedins_code, setl_time);

CREATE TABLE ledger_accumulators (
    psn_no TEXT NOT NULL,
    year INTEGER NOT NULL,
    acc_key TEXT NOT NULL,
    value BIGINT NOT NULL CHECK (value >= 0),
    PRIMARY KEY (psn_no, year, acc_key)
);

CREATE FUNCTION journal_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal rows are append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER journal_transactions_append_only BEFORE UPDATE OR DELETE ON journal_transactions
    FOR EACH ROW EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER journal_transactions_no_truncate BEFORE TRUNCATE ON journal_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER journal_postings_append_only BEFORE UPDATE OR DELETE ON journal_postings
    FOR EACH ROW EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER journal_postings_no_truncate BEFORE TRUNCATE ON journal_postings
    FOR EACH STATEMENT EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER journal_accumulator_deltas_append_only BEFORE UPDATE OR DELETE ON journal_accumulator_deltas
    FOR EACH ROW EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER journal_accumulator_deltas_no_truncate BEFORE TRUNCATE ON journal_accumulator_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER ledger_settlements_append_only BEFORE UPDATE OR DELETE ON ledger_settlements
    FOR EACH ROW EXECUTE FUNCTION journal_reject_change();
CREATE TRIGGER ledger_settlements_no_truncate BEFORE TRUNCATE ON ledger_settlements
    FOR EACH STATEMENT EXECUTE FUNCTION journal_reject_change();

-- Every posting must belong to a transaction header written in the same database
-- transaction and name an existing account. One query per INSERT or COPY statement.
CREATE FUNCTION journal_postings_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad_txn BIGINT;
BEGIN
    SELECT n.txn_id INTO bad_txn
    FROM new_postings n
    LEFT JOIN journal_transactions t ON t.txn_id = n.txn_id
    LEFT JOIN ledger_accounts a ON a.account_id = n.account_id
    WHERE t.txn_id IS NULL OR t.created_xid <> pg_current_xact_id() OR a.account_id IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'posting of transaction % has no header written in this database transaction, or no account', bad_txn
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER journal_postings_check AFTER INSERT ON journal_postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION journal_postings_check_statement();

-- A cancel must reverse a settlement.
CREATE FUNCTION journal_transactions_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad_txn BIGINT;
BEGIN
    SELECT n.txn_id INTO bad_txn
    FROM new_transactions n
    LEFT JOIN journal_transactions o ON o.txn_id = n.reverses_txn_id
    WHERE n.reverses_txn_id IS NOT NULL AND (o.txn_id IS NULL OR o.kind <> 'settle')
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cancel % does not reverse a settlement', bad_txn USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER journal_transactions_check AFTER INSERT ON journal_transactions
    REFERENCING NEW TABLE AS new_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION journal_transactions_check_statement();

-- Every settlement record belongs to a header of the same kind written in the same database transaction.
CREATE FUNCTION ledger_settlements_check_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad_txn BIGINT;
BEGIN
    SELECT n.txn_id INTO bad_txn
    FROM new_settlements n
    LEFT JOIN journal_transactions t ON t.txn_id = n.txn_id
    WHERE t.txn_id IS NULL OR t.kind <> n.kind OR t.created_xid <> pg_current_xact_id()
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'settlement record % has no header of its kind written in this database transaction', bad_txn
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_settlements_check AFTER INSERT ON ledger_settlements
    REFERENCING NEW TABLE AS new_settlements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_settlements_check_statement();

-- Each transaction must balance when the database transaction commits, so its lines may
-- be written in any number of statements.
CREATE FUNCTION journal_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total_debit BIGINT;
    total_credit BIGINT;
BEGIN
    SELECT coalesce(sum(debit), 0), coalesce(sum(credit), 0) INTO total_debit, total_credit
    FROM journal_postings WHERE txn_id = NEW.txn_id;
    IF total_debit <> total_credit THEN
        RAISE EXCEPTION 'journal transaction % does not balance: debits % fen, credits % fen', NEW.txn_id, total_debit, total_credit
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER journal_transactions_balanced AFTER INSERT ON journal_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_check_balanced();

-- One group-commit batch needs two calls inside its transaction, so that a batch costs
-- four round trips (BEGIN, read, write, COMMIT) whatever its size. Both take one array
-- per column, in the order the store builds them.

-- Lock the batch's persons (the caller sorts the keys, so batches never deadlock), then
-- read what the batch needs. Each RETURN QUERY takes a new snapshot, after the locks.
-- part 0: new transaction ids; 1: (origin, msgid) hits; 2: earlier settlements of the
-- charge batches; 3: originals of cancels; 4: counters; 5: personal-account balances and ids.
CREATE FUNCTION ledger_batch_read(
    lock_keys BIGINT[], id_count INTEGER,
    msg_origins TEXT[], msg_ids TEXT[],
    batch_fixmedins TEXT[], batch_mdtrt_ids TEXT[], batch_chrg_bchnos TEXT[],
    cancel_setl_ids TEXT[],
    counter_persons TEXT[], counter_years INTEGER[],
    balance_accounts TEXT[]
) RETURNS TABLE (part INTEGER, k1 TEXT, k2 TEXT, k3 TEXT, k4 TEXT, n1 BIGINT, n2 BIGINT, flag BOOLEAN, body BYTEA)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(k) FROM unnest(lock_keys) AS k;

    RETURN QUERY SELECT 0, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, nextval('journal_txn_id_seq'), NULL::BIGINT, NULL::BOOLEAN, NULL::BYTEA
        FROM generate_series(1, id_count);

    RETURN QUERY SELECT 1, t.origin, t.msgid, t.kind, t.request_digest, t.txn_id, NULL::BIGINT, NULL::BOOLEAN, coalesce(s.record, t.body)
        FROM unnest(msg_origins, msg_ids) AS k(origin, msgid)
        JOIN journal_transactions t ON t.origin = k.origin AND t.msgid = k.msgid
        LEFT JOIN ledger_settlements s ON s.txn_id = t.txn_id;

    RETURN QUERY SELECT 2, s.fixmedins_code, s.mdtrt_id, s.chrg_bchno, NULL::TEXT, s.txn_id, NULL::BIGINT,
            EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id), s.record
        FROM unnest(batch_fixmedins, batch_mdtrt_ids, batch_chrg_bchnos) AS k(f, m, b)
        JOIN ledger_settlements s ON s.fixmedins_code = k.f AND s.mdtrt_id = k.m AND s.chrg_bchno = k.b AND s.kind = 'settle';

    RETURN QUERY SELECT 3, s.setl_id, NULL::TEXT, NULL::TEXT, NULL::TEXT, s.txn_id, NULL::BIGINT,
            EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id), s.record
        FROM ledger_settlements s WHERE s.setl_id = ANY(cancel_setl_ids);

    RETURN QUERY SELECT 4, a.psn_no, a.acc_key, NULL::TEXT, NULL::TEXT, a.year::BIGINT, a.value, NULL::BOOLEAN, NULL::BYTEA
        FROM unnest(counter_persons, counter_years) AS k(p, y)
        JOIN ledger_accumulators a ON a.psn_no = k.p AND a.year = k.y;

    RETURN QUERY SELECT 5, a.owner, a.account_key, NULL::TEXT, NULL::TEXT, a.credits_posted - a.debits_posted, a.account_id, NULL::BOOLEAN, NULL::BYTEA
        FROM ledger_accounts a WHERE a.account_key = ANY(balance_accounts);
END
$$;

-- Write a planned batch: journal rows, then account totals (rows locked in id order so
-- that two batches never deadlock on them), then counters.
CREATE FUNCTION ledger_batch_write(
    t_txn_ids BIGINT[], t_kinds TEXT[], t_origins TEXT[], t_msgids TEXT[], t_reverses BIGINT[], t_digests TEXT[], t_bodies BYTEA[],
    s_txn_ids BIGINT[], s_setl_ids TEXT[], s_kinds TEXT[], s_fixmedins TEXT[], s_msgids TEXT[], s_mdtrt_ids TEXT[],
    s_chrg_bchnos TEXT[], s_attempts INTEGER[], s_persons TEXT[], s_admdvs TEXT[], s_insutypes TEXT[], s_med_types TEXT[],
    s_clr_types TEXT[], s_clr_optins TEXT[], s_times TEXT[], s_years INTEGER[], s_originals TEXT[], s_digests TEXT[],
    s_rule_versions TEXT[], s_catalog_versions TEXT[], s_feedetl_sns TEXT[], s_medfee BIGINT[], s_fund BIGINT[],
    s_acct BIGINT[], s_cash BIGINT[], s_records BYTEA[],
    p_txn_ids BIGINT[], p_seqs INTEGER[], p_accounts BIGINT[], p_debits BIGINT[], p_credits BIGINT[],
    d_txn_ids BIGINT[], d_persons TEXT[], d_years INTEGER[], d_keys TEXT[], d_deltas BIGINT[],
    a_ids BIGINT[], a_debits BIGINT[], a_credits BIGINT[],
    c_persons TEXT[], c_years INTEGER[], c_keys TEXT[], c_values BIGINT[]
) RETURNS VOID LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO journal_transactions (txn_id, kind, origin, msgid, reverses_txn_id, request_digest, body)
        SELECT * FROM unnest(t_txn_ids, t_kinds, t_origins, t_msgids, t_reverses, t_digests, t_bodies);
    IF cardinality(s_txn_ids) > 0 THEN
        INSERT INTO ledger_settlements (txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt,
                psn_no, insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id,
                request_digest, rule_version, catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay,
                psn_cash_pay, record)
            SELECT * FROM unnest(s_txn_ids, s_setl_ids, s_kinds, s_fixmedins, s_msgids, s_mdtrt_ids, s_chrg_bchnos, s_attempts,
                s_persons, s_admdvs, s_insutypes, s_med_types, s_clr_types, s_clr_optins, s_times, s_years, s_originals,
                s_digests, s_rule_versions, s_catalog_versions, s_feedetl_sns, s_medfee, s_fund, s_acct, s_cash, s_records);
    END IF;
    IF cardinality(p_txn_ids) > 0 THEN
        INSERT INTO journal_postings (txn_id, seq, account_id, debit, credit)
            SELECT * FROM unnest(p_txn_ids, p_seqs, p_accounts, p_debits, p_credits);
    END IF;
    IF cardinality(d_txn_ids) > 0 THEN
        INSERT INTO journal_accumulator_deltas (txn_id, psn_no, year, acc_key, delta)
            SELECT * FROM unnest(d_txn_ids, d_persons, d_years, d_keys, d_deltas);
    END IF;

    PERFORM 1 FROM (SELECT account_id FROM ledger_accounts WHERE account_id = ANY(a_ids) ORDER BY account_id FOR UPDATE) AS locked;
    UPDATE ledger_accounts a SET debits_posted = a.debits_posted + d.dr, credits_posted = a.credits_posted + d.cr
        FROM unnest(a_ids, a_debits, a_credits) AS d(id, dr, cr) WHERE a.account_id = d.id;

    INSERT INTO ledger_accumulators (psn_no, year, acc_key, value)
        SELECT * FROM unnest(c_persons, c_years, c_keys, c_values)
        ON CONFLICT (psn_no, year, acc_key) DO UPDATE SET value = EXCLUDED.value;
END
$$;
