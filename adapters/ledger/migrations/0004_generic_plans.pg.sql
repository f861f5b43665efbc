-- Plan the batch functions' statements once per connection instead of at every call.
--
-- Their parameters are arrays. PostgreSQL plans a statement with parameters afresh for
-- each of its first five runs, then keeps the generic plan only if its estimated cost is
-- no higher than the custom plans' average. A generic plan cannot see an array's length,
-- so it is estimated at more rows than a small batch's custom plans, and it was never
-- chosen: every statement of every batch was planned again. On this project's 2-core test
-- machine ledger_batch_read took 0.8 to 1.2 ms for a batch of one settlement, nearly all
-- of it planning, and 0.13 to 0.17 ms with the generic plans.
--
-- The generic plans are the plans these functions were written for: every lookup is an
-- index probe per key (LATERAL subqueries in the reads, scan and join types switched off
-- in the write), whatever the planner estimates for the arrays. The one lookup of the
-- read written as `= ANY(array)`, the originals of cancels, became a sequential scan of
-- ledger_settlements in the generic plan, even for a batch without cancels, so it is
-- rewritten below as a LATERAL probe per setl_id like the others.
--
-- The write paired each record with its chain link by joining two unnested arrays on their
-- ordinality. With hash and merge joins switched off that join is a nested loop, quadratic
-- in the batch's records: with integer arrays in psql on the same machine, 17 ms for 512
-- rows and 0.6 ms for 64. ROWS FROM zips the arrays in one pass instead.


CREATE OR REPLACE FUNCTION ledger_batch_read(
    lock_keys BIGINT[], id_count INTEGER,
    msg_origins TEXT[], msg_ids TEXT[],
    batch_fixmedins TEXT[], batch_mdtrt_ids TEXT[], batch_chrg_bchnos TEXT[],
    cancel_setl_ids TEXT[],
    counter_persons TEXT[], counter_years INTEGER[],
    balance_accounts TEXT[]
) RETURNS TABLE (part INTEGER, k1 TEXT, k2 TEXT, k3 TEXT, k4 TEXT, n1 BIGINT, n2 BIGINT, flag BOOLEAN, body BYTEA)
LANGUAGE plpgsql
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(k) FROM unnest(lock_keys) AS k;

    RETURN QUERY SELECT 0, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT, nextval('journal_txn_id_seq'), NULL::BIGINT, NULL::BOOLEAN, NULL::BYTEA
        FROM generate_series(1, id_count);

    RETURN QUERY SELECT 1, t.origin, t.msgid, t.kind, t.request_digest, t.txn_id, NULL::BIGINT, NULL::BOOLEAN,
            coalesce((SELECT s.record FROM ledger_settlements s WHERE s.txn_id = t.txn_id), t.body)
        FROM unnest(msg_origins, msg_ids) AS k(origin, msgid)
        CROSS JOIN LATERAL (
            SELECT * FROM journal_transactions j WHERE j.origin = k.origin AND j.msgid = k.msgid OFFSET 0
        ) AS t;

    RETURN QUERY SELECT 2, s.fixmedins_code, s.mdtrt_id, s.chrg_bchno, NULL::TEXT, s.txn_id, NULL::BIGINT,
            EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id), s.record
        FROM unnest(batch_fixmedins, batch_mdtrt_ids, batch_chrg_bchnos) AS k(f, m, b)
        CROSS JOIN LATERAL (
            SELECT * FROM ledger_settlements x
            WHERE x.fixmedins_code = k.f AND x.mdtrt_id = k.m AND x.chrg_bchno = k.b AND x.kind = 'settle' OFFSET 0
        ) AS s;

    RETURN QUERY SELECT 3, s.setl_id, NULL::TEXT, NULL::TEXT, NULL::TEXT, s.txn_id, NULL::BIGINT,
            EXISTS (SELECT 1 FROM journal_transactions c WHERE c.reverses_txn_id = s.txn_id), s.record
        FROM unnest(cancel_setl_ids) AS k(setl_id)
        CROSS JOIN LATERAL (SELECT * FROM ledger_settlements x WHERE x.setl_id = k.setl_id OFFSET 0) AS s;

    RETURN QUERY SELECT 4, a.psn_no, a.acc_key, NULL::TEXT, NULL::TEXT, a.year::BIGINT, a.value, NULL::BOOLEAN, NULL::BYTEA
        FROM unnest(counter_persons, counter_years) AS k(p, y)
        CROSS JOIN LATERAL (SELECT * FROM ledger_accumulators x WHERE x.psn_no = k.p AND x.year = k.y OFFSET 0) AS a;

    RETURN QUERY SELECT 5, a.owner, a.account_key, NULL::TEXT, NULL::TEXT, a.credits_posted - a.debits_posted, a.account_id, NULL::BOOLEAN, NULL::BYTEA
        FROM unnest(balance_accounts) AS k(account_key)
        CROSS JOIN LATERAL (SELECT * FROM ledger_accounts x WHERE x.account_key = k.account_key OFFSET 0) AS a;
END
$$;

CREATE OR REPLACE FUNCTION ledger_batch_write_rows(
    t_rows ledger_txn_row[], s_rows ledger_settlement_row[], p_rows ledger_posting_row[], d_rows ledger_delta_row[],
    a_moves ledger_account_move[], c_rows ledger_counter_row[]
) RETURNS VOID LANGUAGE plpgsql
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    record_count INTEGER := coalesce(cardinality(s_rows), 0);
    head_seq BIGINT;
    head_hash TEXT;
    seqs BIGINT[];
    prevs TEXT[];
    hashes TEXT[];
BEGIN
    INSERT INTO journal_transactions (txn_id, kind, origin, msgid, reverses_txn_id, request_digest, body)
        SELECT * FROM unnest(t_rows);
    IF record_count > 0 THEN
        SELECT last_seq, last_hash INTO head_seq, head_hash FROM ledger_chain_head WHERE chain = 'ledger' FOR UPDATE;
        seqs := array_fill(0::BIGINT, ARRAY[record_count]);
        prevs := array_fill(''::TEXT, ARRAY[record_count]);
        hashes := array_fill(''::TEXT, ARRAY[record_count]);
        FOR i IN 1..record_count LOOP
            seqs[i] := head_seq + i;
            prevs[i] := head_hash;
            head_hash := encode(sha256((s_rows[i]).record || convert_to(head_hash, 'UTF8')), 'hex');
            hashes[i] := head_hash;
        END LOOP;
        INSERT INTO ledger_settlements (txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt,
                psn_no, insuplc_admdvs, insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id,
                request_digest, rule_version, catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay,
                psn_cash_pay, record, chain_seq, prev_hash, record_hash)
            SELECT s.txn_id, s.setl_id, s.kind, s.fixmedins_code, s.msgid, s.mdtrt_id, s.chrg_bchno, s.batch_attempt,
                s.psn_no, s.insuplc_admdvs, s.insutype, s.med_type, s.clr_type, s.clr_optins, s.setl_time, s.year,
                s.original_setl_id, s.request_digest, s.rule_version, s.catalog_version, s.feedetl_sns, s.medfee_sumamt,
                s.fund_pay_sumamt, s.acct_pay, s.psn_cash_pay, s.record, s.seq, s.prev, s.hash
            FROM ROWS FROM (unnest(s_rows), unnest(seqs), unnest(prevs), unnest(hashes)) AS s(
                txn_id, setl_id, kind, fixmedins_code, msgid, mdtrt_id, chrg_bchno, batch_attempt, psn_no, insuplc_admdvs,
                insutype, med_type, clr_type, clr_optins, setl_time, year, original_setl_id, request_digest, rule_version,
                catalog_version, feedetl_sns, medfee_sumamt, fund_pay_sumamt, acct_pay, psn_cash_pay, record, seq, prev, hash
            );
        UPDATE ledger_chain_head SET last_seq = head_seq + record_count, last_hash = head_hash WHERE chain = 'ledger';
    END IF;
    IF cardinality(p_rows) > 0 THEN
        INSERT INTO journal_postings (txn_id, seq, account_id, debit, credit) SELECT * FROM unnest(p_rows);
    END IF;
    IF cardinality(d_rows) > 0 THEN
        INSERT INTO journal_accumulator_deltas (txn_id, psn_no, year, acc_key, delta) SELECT * FROM unnest(d_rows);
    END IF;

    PERFORM 1 FROM (
        SELECT a.account_id FROM ledger_accounts a WHERE a.account_id = ANY(ARRAY(SELECT m.account_id FROM unnest(a_moves) m))
        ORDER BY a.account_id FOR UPDATE
    ) AS locked;
    UPDATE ledger_accounts a SET debits_posted = a.debits_posted + m.debit, credits_posted = a.credits_posted + m.credit
        FROM unnest(a_moves) AS m WHERE a.account_id = m.account_id;

    INSERT INTO ledger_accumulators (psn_no, year, acc_key, value)
        SELECT * FROM unnest(c_rows)
        ON CONFLICT (psn_no, year, acc_key) DO UPDATE SET value = EXCLUDED.value;
END
$$;

ALTER FUNCTION journal_check_balanced_set SET plan_cache_mode = force_generic_plan;
