-- The chains go; every message stays.
DROP INDEX messages_unchained;
DROP INDEX messages_chain;
ALTER TABLE messages DROP COLUMN chain;
