-- A person's cards are read by person number whenever a claim names its person (the
-- settling-person read of a 2207, person queries). Without this index each such read scans
-- every card of the region. Written in the SQL that PostgreSQL and SQLite share.

CREATE INDEX IF NOT EXISTS srv_card_by_person ON srv_card (psn_no);
