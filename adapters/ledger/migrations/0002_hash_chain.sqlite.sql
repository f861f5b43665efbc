-- Tamper-evident hash chain over ledger_settlements, as in the PostgreSQL schema: one chain
-- per ledger ordered by chain_seq = 1, 2, 3, ..., each link storing prev_hash and
-- record_hash = hex(sha256(record || prev_hash as ASCII)). SQLite has no SHA-256 function,
-- so the store computes the hashes (settlement.chain) under its write lock, and the
-- triggers below check only that each new link follows the one before it. The records
-- written before this migration are linked by the migration runner (adapters.ledger.sqlite)
-- in the same database transaction, in transaction id order.

ALTER TABLE ledger_settlements ADD COLUMN chain_seq INTEGER;
ALTER TABLE ledger_settlements ADD COLUMN prev_hash TEXT;
ALTER TABLE ledger_settlements ADD COLUMN record_hash TEXT;

CREATE UNIQUE INDEX ledger_settlements_chain ON ledger_settlements (chain_seq);

CREATE TABLE ledger_chain_head (
    chain TEXT PRIMARY KEY CHECK (chain = 'ledger'),
    last_seq INTEGER NOT NULL CHECK (last_seq >= 0),
    last_hash TEXT NOT NULL
);
INSERT INTO ledger_chain_head (chain, last_seq, last_hash)
    VALUES ('ledger', 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- A record may be updated only once, to link a record written before this migration;
-- its content cannot change then either.
DROP TRIGGER ledger_settlements_no_update;
CREATE TRIGGER ledger_settlements_no_update BEFORE UPDATE ON ledger_settlements
WHEN OLD.chain_seq IS NOT NULL OR NEW.chain_seq IS NULL OR NEW.record IS NOT OLD.record OR NEW.txn_id IS NOT OLD.txn_id
BEGIN
    SELECT RAISE(ABORT, 'journal rows are append-only');
END;

CREATE TRIGGER ledger_settlements_chain BEFORE INSERT ON ledger_settlements
WHEN NEW.chain_seq IS NULL OR NEW.chain_seq < 1 OR NEW.record_hash IS NULL OR length(NEW.record_hash) <> 64
    OR NEW.prev_hash IS NOT (
        CASE WHEN NEW.chain_seq = 1 THEN '0000000000000000000000000000000000000000000000000000000000000000'
        ELSE (SELECT record_hash FROM ledger_settlements WHERE chain_seq = NEW.chain_seq - 1) END
    )
BEGIN
    SELECT RAISE(ABORT, 'chain link does not follow the link before it');
END;

CREATE TRIGGER ledger_chain_head_no_delete BEFORE DELETE ON ledger_chain_head
BEGIN
    SELECT RAISE(ABORT, 'ledger_chain_head rows cannot be removed');
END;

CREATE TRIGGER ledger_chain_head_forward BEFORE UPDATE ON ledger_chain_head
WHEN NEW.chain IS NOT OLD.chain OR NEW.last_seq < OLD.last_seq OR (NEW.last_seq > 0 AND NOT EXISTS (
    SELECT 1 FROM ledger_settlements WHERE chain_seq = NEW.last_seq AND record_hash = NEW.last_hash
))
BEGIN
    SELECT RAISE(ABORT, 'chain head may only move forward onto an existing link');
END;
