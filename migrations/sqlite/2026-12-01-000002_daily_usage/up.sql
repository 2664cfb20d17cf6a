-- What each principal spent upstream, per UTC day: the sum behind
-- COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL. Every reply, title and summary adds
-- its usage to the row of its principal and day in one upsert
-- (`INSERT … ON CONFLICT DO UPDATE SET prompt_tokens = prompt_tokens + …`),
-- so concurrent additions, from one server or several on this file, never
-- lose one another.
--
-- `day` is whole days since 1970-01-01 UTC (`UtcDay::days_since_epoch`), so
-- a day begins at 00:00 UTC whatever the server's time zone. A day with no
-- row spent nothing. Rows of past days are kept: they are small (one per
-- principal and day that used the service) and say who used how much when.
--
-- WITHOUT ROWID: the primary key is the only way in, so the table is that
-- index and nothing else.

CREATE TABLE daily_usage (
    principal         TEXT    NOT NULL CHECK (principal <> ''),
    day               INTEGER NOT NULL,
    prompt_tokens     BIGINT  NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT  NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    PRIMARY KEY (principal, day)
) WITHOUT ROWID;
