-- A session's messages form a tree: regenerating a reply or editing a
-- question adds a sibling, and nothing is ever overwritten. Each session
-- points at the newest message of its active branch, and full-text search
-- finds the owner's messages on every branch. The same columns and indexes
-- as migrations/sqlite's migration of the same name (see its comments);
-- search is each backend's own (an FTS5 table there, a tsvector here).

-- The message this one follows (NULL for a root) and its place on its
-- branch (0 for a root, its parent's + 1 otherwise). No foreign key, as on
-- SQLite: the repository checks every parent in the transaction that
-- stores the child, and a self-reference would add a check per row to
-- every cascading delete of a session. A nullable column and a column
-- with a constant default are added without rewriting the table.
ALTER TABLE messages
    ADD COLUMN parent_id TEXT COLLATE "C"
        CHECK (parent_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    ADD COLUMN depth BIGINT NOT NULL DEFAULT 0 CHECK (depth >= 0);

-- The newest message of the active branch; NULL while the session is empty.
ALTER TABLE sessions
    ADD COLUMN head_message_id TEXT COLLATE "C"
        CHECK (head_message_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');

-- History stored before: each session's messages, in id order (creation
-- order), become one chain, each following the one before it.
UPDATE messages
SET parent_id = chain.parent_id, depth = chain.depth
FROM (
    SELECT id,
           lag(id) OVER (PARTITION BY session_id ORDER BY id) AS parent_id,
           row_number() OVER (PARTITION BY session_id ORDER BY id) - 1 AS depth
    FROM messages
) AS chain
WHERE messages.id = chain.id AND chain.depth > 0;

-- Its head is its newest message, and its count the chain's length.
UPDATE sessions
SET head_message_id = tail.id, message_count = tail.length
FROM (
    SELECT session_id, max(id) AS id, count(*) AS length FROM messages GROUP BY session_id
) AS tail
WHERE sessions.id = tail.session_id;
UPDATE sessions SET message_count = 0 WHERE head_message_id IS NULL AND message_count <> 0;

-- Children of a message and the roots of a session, oldest first; walking
-- up is a lookup of the primary key.
CREATE INDEX messages_session_parent_id ON messages (session_id, parent_id, id);
-- A page of a branch where no other branch runs beside it (every message of
-- its depths the only one) is a range of depths: no walk up the tree.
CREATE INDEX messages_session_depth ON messages (session_id, depth);

-- Full-text search. `colloquy_search` is `simple` (every word as it is
-- written, lower-cased: every language works, with no stemming surprises),
-- with accents folded by `unaccent` where the server has that extension
-- (a contrib module, trusted since PostgreSQL 13, so the database's owner
-- may create it). Without it, case is still folded and accents count.
-- Queries and snippets name the configuration, so they fold the same way.
CREATE TEXT SEARCH CONFIGURATION colloquy_search (COPY = simple);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS unaccent;
            -- The word types that can hold a letter outside ASCII; the
            -- ASCII ones have no accent to fold.
            ALTER TEXT SEARCH CONFIGURATION colloquy_search
                ALTER MAPPING FOR word, numword, hword, numhword, hword_part, hword_numpart
                WITH unaccent, simple;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'colloquy: unaccent cannot be created here; search folds case but not accents';
        END;
    END IF;
END
$$;

-- The words of each message, computed by the server on every insert and
-- every update of `content` (a reply's text flushed while it streams
-- included), so it is never out of step; adding it computes it for the
-- rows stored before. The GIN index answers `search_vector @@ query`.
-- Without `fastupdate`, each write goes into the index itself instead of a
-- pending list that every search would read through until a vacuum
-- empties it: a write costs a little more, a search stays fast between
-- vacuums.
ALTER TABLE messages
    ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('colloquy_search', content)) STORED;
CREATE INDEX messages_search ON messages USING gin (search_vector) WITH (fastupdate = off);
