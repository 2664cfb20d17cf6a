-- Each message's conversation chain: a fingerprint of the roles and texts
-- of its branch from the first message to it (`ConversationChain` in the
-- domain crate, which says how it is computed). A request to the
-- OpenAI-compatible routes resends a whole conversation; the chain of its
-- earlier messages finds the stored message it continues from with one
-- lookup of this index, however many messages are stored.
--
-- NULL until the message's text is final (a reply while it streams). The
-- repository fills it in the transaction that makes a text final; the
-- messages stored before this migration get theirs when the database is
-- next opened (hashing is not SQL, so it cannot happen here).
-- The same column and indexes as migrations/postgres's migration of the
-- same name.
ALTER TABLE messages ADD COLUMN chain BIGINT;

-- The lookup: the owner's newest message with a chain.
CREATE INDEX messages_chain ON messages (chain, id);

-- The messages still waiting for their chain, by session and depth: what
-- a fill reads (a parent's chain comes before its children's). It holds
-- only the few replies streaming at the moment.
CREATE INDEX messages_unchained ON messages (session_id, depth) WHERE chain IS NULL;
