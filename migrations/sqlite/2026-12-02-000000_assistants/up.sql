-- Assistants: named voices a principal defines (their own instructions,
-- model and tools), several of which may answer in one conversation; which
-- one wrote each message; and each session's default one.
--
-- Nothing stored before changes: every column added here is nullable, and
-- NULL means what colloquy did before it (the session's default voice).

CREATE TABLE assistants (
    -- As for sessions: UUID v7 in hyphenated lower case, so `id` order is creation order.
    id           TEXT   NOT NULL PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
    -- The principal that made it: the only one that may use, read or change
    -- it. Every query is scoped by it, as for sessions.
    owner        TEXT   NOT NULL CHECK (owner <> ''),
    name         TEXT   NOT NULL CHECK (name <> ''),
    -- The assistant's system prompt; NULL for none of its own.
    instructions TEXT,
    model        TEXT   NOT NULL CHECK (model <> ''),
    -- A JSON array of the names of the tools it may call.
    tools        TEXT   NOT NULL DEFAULT '[]'
        CHECK (json_valid(tools) AND json_type(tools) = 'array'),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- A name is what the other voices of a conversation know an assistant by:
-- unique among its owner's. This index is what decides a race between two
-- writers of one name; the repository turns its refusal into a conflict.
CREATE UNIQUE INDEX assistants_owner_name ON assistants (owner, name);

-- A principal's listing (`WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?`)
-- is a range scan here, as for sessions.
CREATE INDEX assistants_owner_id ON assistants (owner, id);

-- Who wrote an assistant message: the assistant's id and its name as it was
-- then, both or neither (neither for the session's default voice and for
-- user messages). No foreign key: a deleted or renamed assistant's messages
-- keep saying who wrote them.
ALTER TABLE messages
    ADD COLUMN assistant_id TEXT
        CHECK (assistant_id IS NULL OR (length(assistant_id) = 36 AND assistant_id = lower(assistant_id)));
ALTER TABLE messages
    ADD COLUMN assistant_name TEXT
        CHECK ((assistant_name IS NULL) = (assistant_id IS NULL));

-- The assistant that answers a message naming none; NULL for the service's
-- default voice. Not a foreign key either: deleting an assistant clears it
-- in the owner's sessions, in the same transaction.
ALTER TABLE sessions
    ADD COLUMN assistant_id TEXT
        CHECK (assistant_id IS NULL OR (length(assistant_id) = 36 AND assistant_id = lower(assistant_id)));
