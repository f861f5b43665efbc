-- 2601 reversals: one row per original message an institution asked to reverse, so that
-- a second 2601 for it is refused with the time of the first. ``took_effect`` says whether
-- the original had changed anything (1) or was found without effect and only blocked (0).
-- Written in the SQL that PostgreSQL and SQLite share.

CREATE TABLE IF NOT EXISTS srv_reversal (
    fixmedins_code  TEXT NOT NULL,
    omsgid          TEXT NOT NULL,
    oinfno          TEXT NOT NULL,
    psn_no          TEXT NOT NULL,
    took_effect     INTEGER NOT NULL,
    reversed_by     TEXT NOT NULL,           -- msgid of the 2601
    reversed_at     TEXT NOT NULL,           -- engine time of the 2601
    PRIMARY KEY (fixmedins_code, omsgid)
);
