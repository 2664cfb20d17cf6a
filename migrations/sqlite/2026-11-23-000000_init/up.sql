-- colloquy's first schema: sessions and their messages.
--
-- Ids are UUID v7 written in hyphenated lower case (36 characters). Version 7
-- UUIDs start with their creation time, so the text order of `id` is creation
-- order: every listing is an index range scan on `id`, and a page cursor is a
-- plain comparison (`id > ?` or `id < ?`) that works even when the row the
-- cursor names has been deleted. The CHECKs on `id` keep that true: an id in
-- another spelling (upper case, no hyphens) would sort in the wrong place.
--
-- Timestamps are microseconds since the Unix epoch, UTC, in 64-bit integers.

CREATE TABLE sessions (
    -- NOT NULL is spelled out: SQLite lets a non-INTEGER primary key hold NULLs otherwise.
    id            TEXT   NOT NULL PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
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

CREATE TABLE messages (
    id                TEXT   NOT NULL PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
    session_id        TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role              TEXT   NOT NULL CHECK (role IN ('user', 'assistant')),
    content           TEXT   NOT NULL,
    status            TEXT   NOT NULL
        CHECK (status IN ('complete', 'streaming', 'cancelled', 'failed', 'interrupted')),
    model             TEXT,
    finish_reason     TEXT,
    prompt_tokens     BIGINT CHECK (prompt_tokens >= 0),
    completion_tokens BIGINT CHECK (completion_tokens >= 0),
    -- No CHECK on the set of codes: new upstream failure modes get new codes,
    -- and SQLite can only change a CHECK by rebuilding the table.
    error_code        TEXT,
    error_message     TEXT,
    -- A JSON array of {"id", "name", "arguments", "result", "error"}, NULL when
    -- the reply called no tool. `arguments` and `result` are kept as JSON
    -- strings holding the model's text byte for byte, even when it is not
    -- valid JSON.
    tool_calls        TEXT   CHECK (json_valid(tool_calls) AND json_type(tool_calls) = 'array'),
    created_at        BIGINT NOT NULL,
    completed_at      BIGINT,
    -- Usage and error are each one domain value: both columns or neither.
    CHECK ((prompt_tokens IS NULL) = (completion_tokens IS NULL)),
    CHECK ((error_code IS NULL) = (error_message IS NULL))
);

-- History pages (`WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?`) and the
-- newest messages of a session (`ORDER BY id DESC`) are range scans here; it is
-- also the child-key index that keeps ON DELETE CASCADE from scanning the table.
CREATE INDEX messages_session_id_id ON messages (session_id, id);

-- Replies still streaming: few at any time, looked up at every start-up to mark
-- them interrupted. Partial, so it costs nothing for the finished majority.
CREATE INDEX messages_streaming ON messages (session_id) WHERE status = 'streaming';
