-- A session's messages form a tree: regenerating a reply or editing a
-- question adds a sibling, and nothing is ever overwritten. Each session
-- points at the newest message of its active branch, and full-text search
-- finds the owner's messages on every branch. The same columns and indexes
-- as migrations/postgres's migration of the same name; search is each
-- backend's own (an FTS5 table here, a tsvector column there).

-- The message this one follows; NULL for the first of a branch (a session
-- may have several: editing the first question adds a root). No foreign
-- key: `append_messages` and `import_session` check, in their transaction,
-- that every parent is a message of the same session, and a self-reference
-- would make SQLite look up children for every row a session's delete
-- cascades to.
ALTER TABLE messages
    ADD COLUMN parent_id TEXT
        CHECK (parent_id IS NULL OR (length(parent_id) = 36 AND parent_id = lower(parent_id)));

-- The message's place on its branch: 0 for a root, its parent's + 1
-- otherwise, written once when it is stored. A branch's length is its
-- leaf's depth + 1, and a page of a branch is a range of depths, so
-- neither needs a walk of the whole tree.
ALTER TABLE messages ADD COLUMN depth BIGINT NOT NULL DEFAULT 0 CHECK (depth >= 0);

-- The newest message of the active branch (NULL while the session is
-- empty); `message_count` is that branch's length from now on. Not a
-- foreign key either: the repository sets it in the transaction that
-- stores the message it names.
ALTER TABLE sessions
    ADD COLUMN head_message_id TEXT
        CHECK (head_message_id IS NULL OR (length(head_message_id) = 36 AND head_message_id = lower(head_message_id)));

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

-- The children of a message (`WHERE session_id = ? AND parent_id = ?`),
-- the roots of a session (`parent_id IS NULL`), oldest first: siblings, and
-- the walk down to a branch's newest leaf. Walking up, from a message to
-- its parent, is a lookup of the primary key.
CREATE INDEX messages_session_parent_id ON messages (session_id, parent_id, id);
-- A page of a branch where no other branch runs beside it (every message of
-- its depths the only one) is a range of depths: no walk up the tree.
CREATE INDEX messages_session_depth ON messages (session_id, depth);

-- Full-text search over the messages' text, without a second copy of it:
-- an external-content FTS5 table that indexes `messages.content` by the
-- row's rowid, and reads the text back from `messages` for `snippet()`.
-- `unicode61` with `remove_diacritics 2` folds case and accents, so "Cafe"
-- finds "café", in every script, with no stemming.
--
-- `messages` has no INTEGER PRIMARY KEY, so its rowid is implicit; VACUUM
-- keeps the rowids of a table that has indexes, as this one does, so the
-- index stays aligned with its rows.
CREATE VIRTUAL TABLE messages_search USING fts5 (
    content,
    content = 'messages',
    content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- What was stored before.
INSERT INTO messages_search (messages_search) VALUES ('rebuild');

-- Kept in step by the triggers below, in the statement's own transaction,
-- for every writer: an insert, a reply's text flushed while it streams, and
-- a delete, including the deletes a session's ON DELETE CASCADE makes.
-- An external-content index must be told the old text to forget it.
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_search (rowid, content) VALUES (new.rowid, new.content);
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_search (messages_search, rowid, content)
        VALUES ('delete', old.rowid, old.content);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content BEGIN
    INSERT INTO messages_search (messages_search, rowid, content)
        VALUES ('delete', old.rowid, old.content);
    INSERT INTO messages_search (rowid, content) VALUES (new.rowid, new.content);
END;
