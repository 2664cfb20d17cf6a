-- API keys (`COLLOQUY_AUTH=keys`). A key is shown once, when it is made; only
-- the SHA-256 of its text is kept, so a copy of this table lets nobody in. A
-- key holds 32 random bytes, so a fast hash is enough: there is no password
-- to guess.
--
-- The UNIQUE on `key_hash` is the index every authenticated request is looked
-- up by. Revoking sets `revoked_at` and keeps the row, so `colloquy keys list`
-- still shows whose key it was and when it was last used. `last_used_at` is
-- written in batches, at most about once a minute per server process.

CREATE TABLE api_keys (
    -- As for sessions: UUID v7 in hyphenated lower case, so `id` order is creation order.
    id           TEXT   NOT NULL PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
    principal    TEXT   NOT NULL CHECK (principal <> ''),
    label        TEXT,
    key_hash     BLOB   NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
