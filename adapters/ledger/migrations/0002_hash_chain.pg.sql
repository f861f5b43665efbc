-- Tamper-evident hash chain over ledger_settlements (settlements and cancels), one chain
-- per ledger, ordered by chain_seq = 1, 2, 3, ... without gaps:
--
--     record_hash = hex(sha256(record || prev_hash as ASCII)), prev_hash = the previous
--     link's record_hash, or 64 zeros for the first link.
--
-- settlement.chain computes the same hash in Python. ledger_chain_head holds the last
-- link; a committing batch locks that row, so batches are linked in the order they
-- commit, and a deleted tail record is detected because the head still names it.

ALTER TABLE ledger_settlements
    ADD COLUMN chain_seq BIGINT,
    ADD COLUMN prev_hash TEXT,
    ADD COLUMN record_hash TEXT;

CREATE TABLE ledger_chain_head (
    chain TEXT PRIMARY KEY CHECK (chain = 'ledger'),
    last_seq BIGINT NOT NULL CHECK (last_seq >= 0),
    last_hash TEXT NOT NULL
);

-- Link the records written before this migration, in transaction id order. Their stored
-- bytes are hashed as they are, so the chain covers them exactly as they were written.
ALTER TABLE ledger_settlements DISABLE TRIGGER ledger_settlements_append_only;
DO $$
DECLARE
    row RECORD;
    seq BIGINT := 0;
    previous TEXT := repeat('0', 64);
BEGIN
    FOR row IN SELECT txn_id, record FROM ledger_settlements ORDER BY txn_id LOOP
        seq := seq + 1;
        UPDATE ledger_settlements
            SET chain_seq = seq, prev_hash = previous,
                record_hash = encode(sha256(row.record || convert_to(previous, 'UTF8')), 'hex')
            WHERE txn_id = row.txn_id
            RETURNING record_hash INTO previous;
    END LOOP;
    INSERT INTO ledger_chain_head (chain, last_seq, last_hash) VALUES ('ledger', seq, previous);
END
$$;
ALTER TABLE ledger_settlements ENABLE TRIGGER ledger_settlements_append_only;

ALTER TABLE ledger_settlements
    ALTER COLUMN chain_seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN record_hash SET NOT NULL;
CREATE UNIQUE INDEX ledger_settlements_chain ON ledger_settlements (chain_seq);

-- Every inserted link must hash its own record and follow the link before it. One query
-- per INSERT or COPY statement; the links of one statement may refer to each other.
CREATE FUNCTION ledger_settlements_chain_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad_seq BIGINT;
BEGIN
    SELECT n.chain_seq INTO bad_seq
    FROM new_settlements n
    LEFT JOIN ledger_settlements p ON p.chain_seq = n.chain_seq - 1
    WHERE n.chain_seq < 1
       OR n.record_hash <> encode(sha256(n.record || convert_to(n.prev_hash, 'UTF8')), 'hex')
       OR (n.chain_seq = 1 AND n.prev_hash <> repeat('0', 64))
       OR (n.chain_seq > 1 AND p.record_hash IS DISTINCT FROM n.prev_hash)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'chain link % does not hash its record or does not follow link %', bad_seq, bad_seq - 1
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_settlements_chain AFTER INSERT ON ledger_settlements
    REFERENCING NEW TABLE AS new_settlements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_settlements_chain_check();

-- The head only moves forward, and only onto an existing link.
CREATE FUNCTION ledger_chain_head_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'ledger_chain_head rows cannot be removed (%)', TG_OP USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.chain <> OLD.chain OR NEW.last_seq < OLD.last_seq OR NOT EXISTS (
        SELECT 1 FROM ledger_settlements WHERE chain_seq = NEW.last_seq AND record_hash = NEW.last_hash
    ) THEN
        RAISE EXCEPTION 'chain head may only move forward onto an existing link (from % to %)', OLD.last_seq, NEW.last_seq
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_chain_head_forward BEFORE UPDATE OR DELETE ON ledger_chain_head
    FOR EACH ROW EXECUTE FUNCTION ledger_chain_head_check();
CREATE TRIGGER ledger_chain_head_no_truncate BEFORE TRUNCATE ON ledger_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION journal_reject_change();

-- The batch write of 0001, now linking the batch's records: it locks the chain head (so
-- concurrent batches link one after another, in commit order), hashes the records in
-- array order, which is transaction id order within the batch, and moves the head.
CREATE OR REPLACE FUNCTION ledger_batch_write(
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
DECLARE
    record_count INTEGER := cardinality(s_txn_ids);
    head_seq BIGINT;
    head_hash TEXT;
    seqs BIGINT[];
    prevs TEXT[];
    hashes TEXT[];
BEGIN
    INSERT INTO journal_transactions (txn_id, kind, origin, msgid, reverses_txn_id, request_digest, body)
        SELECT * FROM unnest(t_txn_ids, t_kinds, t_origins, t_msgids, t_reverses, t_digests, t_bodies);
    IF record_count > 0 THEN
        SELECT last_seq, last_hash INTO head_seq, head_hash FROM ledger_chain_head WHERE chain = 'ledger' FOR UPDATE;
        seqs := array_fill(0::BIGINT, ARRAY[record_count]);
        prevs := array_fill(''::TEXT, ARRAY[record_count]);
        hashes := array_fill(''::TEXT, ARRAY[record_count]);
        FOR i IN 1..record_count LOOP
            seqs[i] := head_seq + i;
            prevs[i] := head_hash;
            head_hash := encode(sha256(s_records[i] || convert_to(head_hash, 'UTF8')), 'hex');
            hashes[i] := head_hash;
        END LOOP;
        INSERT INTO ledger_settlements (txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt,
                psn_no, insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id,
                request_digest, rule_version, catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay,
                psn_cash_pay, record, chain_seq, prev_hash, record_hash)
            SELECT * FROM unnest(s_txn_ids, s_setl_ids, s_kinds, s_fixmedins, s_msgids, s_mdtrt_ids, s_chrg_bchnos, s_attempts,
                s_persons, s_admdvs, s_insutypes, s_med_types, s_clr_types, s_clr_optins, s_times, s_years, s_originals,
                s_digests, s_rule_versions, s_catalog_versions, s_feedetl_sns, s_medfee, s_fund, s_acct, s_cash, s_records,
                seqs, prevs, hashes);
        UPDATE ledger_chain_head SET last_seq = head_seq + record_count, last_hash = head_hash WHERE chain = 'ledger';
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
