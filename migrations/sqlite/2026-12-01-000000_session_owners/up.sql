-- Every session belongs to a principal: the `sub` of a JWT, the principal an
-- API key was made for, or `anonymous` when the server authenticates nobody.
-- The repository scopes every read and write of a session or its messages by
-- `owner` in the query itself, so another principal's session is as unknown
-- as one that never existed.
--
-- Sessions stored before this migration become the anonymous principal's: a
-- server that ran without authentication keeps its history under `anonymous`.
-- The DEFAULT is only for those rows; the repository always writes the owner.
ALTER TABLE sessions
    ADD COLUMN owner TEXT NOT NULL DEFAULT 'anonymous' CHECK (owner <> '');

-- A principal's listing (`WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?`)
-- is a range scan here, in id order, so it needs no sort step. Lookups by id
-- keep using the primary key and check `owner` on the row they find.
CREATE INDEX sessions_owner_id ON sessions (owner, id);
