-- Files exchanged for reconciliation: detail files uploaded by 9101 and the 3202 result
-- files that 9102 downloads. Written in the SQL that PostgreSQL and SQLite share, and safe
-- to apply twice. SQLite stores the BYTEA column's bytes as a BLOB unchanged.

CREATE TABLE IF NOT EXISTS srv_file (
    file_qury_no    TEXT PRIMARY KEY,
    fixmedins_code  TEXT NOT NULL,           -- only this institution may use or download the file
    kind            TEXT NOT NULL,           -- upload (9101) | result (3202)
    filename        TEXT NOT NULL,
    content         BYTEA NOT NULL,
    stored_at       TEXT NOT NULL,           -- yyyy-MM-dd HH:mm:ss, engine clock
    dld_endtime     TEXT NOT NULL,           -- last moment it can be downloaded
    stored_by       TEXT NOT NULL            -- msgid of the 9101 or 3202
);

CREATE INDEX IF NOT EXISTS srv_file_by_institution ON srv_file (fixmedins_code, kind);
