-- The index first: SQLite refuses to drop a column an index uses. Every
-- session's owner is forgotten, so all of them become visible to whoever asks.
DROP INDEX sessions_owner_id;
ALTER TABLE sessions DROP COLUMN owner;
