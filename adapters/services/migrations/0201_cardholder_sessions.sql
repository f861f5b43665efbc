-- Cardholder sessions of the self-service page, in the database so that every server
-- process (``settlement serve --workers``, or servers behind a load balancer) accepts a
-- session that another one opened. Written in the SQL that PostgreSQL and SQLite share.
-- session_hash is the SHA-256 (hex) of the cookie value, so reading the table does not
-- give anyone a usable session. expires_at is unix seconds.

CREATE TABLE IF NOT EXISTS svc_session (
    session_hash TEXT PRIMARY KEY,
    psn_no       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS svc_session_by_expiry ON svc_session (expires_at);
