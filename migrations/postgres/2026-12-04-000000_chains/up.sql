-- Each message's conversation chain: a fingerprint of the roles and texts
-- of its branch from the first message to it (`ConversationChain` in the
-- domain crate). The same column and indexes as migrations/sqlite's
-- migration of the same name (see its comments): NULL until the text is
-- final, filled by the repository in the transaction that makes it final,
-- and for the messages stored before this migration when the database is
-- next opened. A nullable column is added without rewriting the table.
ALTER TABLE messages ADD COLUMN chain BIGINT;

CREATE INDEX messages_chain ON messages (chain, id);

CREATE INDEX messages_unchained ON messages (session_id, depth) WHERE chain IS NULL;
