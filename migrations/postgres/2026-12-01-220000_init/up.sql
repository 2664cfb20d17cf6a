-- colloquy's schema on PostgreSQL: the tables, columns, constraints and
-- indexes that migrations/sqlite reaches after all its migrations, so that one
-- Diesel schema (crates/adapters/diesel/src/schema.rs) and one set of row types
-- serve both backends. No PostgreSQL database ever held an older shape, so this
-- one migration makes it whole.
--
-- The encoding is SQLite's, on purpose and everywhere:
--
-- * Ids are UUID v7 in hyphenated lower case, as TEXT in the "C" collation. A
--   version 7 UUID starts with its creation time, so the byte order of `id` is
--   creation order: every listing is an index range scan on `id`, and a page
--   cursor is a plain comparison (`id > $1`) that works even when the row it
--   names was deleted. "C" makes that order bytes, whatever the database's
--   locale (a linguistic collation is slower to compare and could order other
--   text differently). The CHECKs keep every id in that one spelling. A native
--   `uuid` column would be 16 bytes instead of 37, but would split the row
--   types in two.
-- * Times are microseconds since the Unix epoch, UTC, in BIGINT: no time zone
--   setting of the server or the session can change what is read back.
--
-- Text columns never hold U+0000, which PostgreSQL's text cannot store; the
-- repository writes U+FFFD in its place, on both backends alike.

CREATE TABLE sessions (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY
        CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    -- The principal the session belongs to: the `sub` of a JWT, the principal
    -- an API key was made for, or `anonymous` when the server authenticates
    -- nobody. Every read and write of a session or its messages is scoped by it
    -- in the query itself, so another principal's session is as unknown as one
    -- that never existed.
    owner         TEXT COLLATE "C" NOT NULL CHECK (owner <> ''),
    title         TEXT,
    -- NULL means the service's default system prompt applies.
    system_prompt TEXT,
    model         TEXT   NOT NULL CHECK (model <> ''),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- Kept by the repository in the same transaction as the inserts, so reading
    -- a session never has to count its messages.
    message_count BIGINT NOT NULL DEFAULT 0 CHECK (message_count >= 0)
);

-- A principal's listing (`WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3`)
-- is a range scan here, read backwards, so it needs no sort step. Lookups by id
-- use the primary key and check `owner` on the row they find.
CREATE INDEX sessions_owner_id ON sessions (owner, id);

CREATE TABLE messages (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY
        CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    session_id        TEXT COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role              TEXT   NOT NULL CHECK (role IN ('user', 'assistant')),
    content           TEXT   NOT NULL,
    status            TEXT   NOT NULL
        CHECK (status IN ('complete', 'streaming', 'cancelled', 'failed', 'interrupted')),
    model             TEXT,
    finish_reason     TEXT,
    prompt_tokens     BIGINT CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT CHECK (completion_tokens >= 0),
    -- No CHECK on the set of codes: new upstream failure modes get new codes.
    error_code        TEXT,
    error_message     TEXT,
    -- A JSON array of {"id", "name", "arguments", "result", "error"}, NULL when
    -- the reply called no tool. `arguments` and `result` are JSON strings holding
    -- the model's text byte for byte, even when it is not valid JSON. Kept as
    -- text (checked as `json`, which keeps it as written, not `jsonb`, which
    -- would rewrite it) so that both backends read back the same string.
    tool_calls        TEXT   CHECK (json_typeof(tool_calls::json) = 'array'),
    created_at        BIGINT NOT NULL,
    completed_at      BIGINT,
    -- Usage and error are each one domain value: both columns or neither.
    CHECK ((prompt_tokens IS NULL) = (completion_tokens IS NULL)),
    CHECK ((error_code IS NULL) = (error_message IS NULL))
);

-- History pages (`WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3`) and
-- the newest messages of a session (`ORDER BY id DESC`) are range scans here;
-- it is also the index that keeps ON DELETE CASCADE from scanning the table.
CREATE INDEX messages_session_id_id ON messages (session_id, id);

-- Replies still streaming: few at any time, looked up at start-up to mark them
-- interrupted. Partial, so it costs nothing for the finished majority.
CREATE INDEX messages_streaming ON messages (session_id) WHERE status = 'streaming';

-- API keys (`COLLOQUY_AUTH=keys`). Only the SHA-256 of a key is kept, so a copy
-- of this table lets nobody in; a key holds 32 random bytes, so a fast hash is
-- enough. The UNIQUE on `key_hash` is the index every authenticated request is
-- looked up by. Revoking sets `revoked_at` and keeps the row; `last_used_at` is
-- written in batches, at most about once a minute per server process.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY
        CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    principal    TEXT COLLATE "C" NOT NULL CHECK (principal <> ''),
    label        TEXT,
    key_hash     BYTEA  NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- What each principal spent upstream, per UTC day: the sum behind
-- COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL. Every reply, title and summary adds its
-- usage in one upsert (`INSERT … ON CONFLICT DO UPDATE SET prompt_tokens =
-- daily_usage.prompt_tokens + EXCLUDED.prompt_tokens`), so concurrent additions
-- from any number of replicas never lose one another. `day` is whole days since
-- 1970-01-01 UTC; a day with no row spent nothing.
CREATE TABLE daily_usage (
    principal         TEXT COLLATE "C" NOT NULL CHECK (principal <> ''),
    day               BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    PRIMARY KEY (principal, day)
);
