-- Every branch but nothing of any message is forgotten: the search index,
-- the tree's columns and the heads go; every message stays, and a
-- session's messages read as one list again, in id order. `message_count`
-- counts them all again.
DROP TRIGGER messages_search_update;
DROP TRIGGER messages_search_delete;
DROP TRIGGER messages_search_insert;
DROP TABLE messages_search;
DROP INDEX messages_session_depth;
DROP INDEX messages_session_parent_id;
UPDATE sessions
SET message_count = (SELECT count(*) FROM messages WHERE messages.session_id = sessions.id);
ALTER TABLE sessions DROP COLUMN head_message_id;
ALTER TABLE messages DROP COLUMN depth;
ALTER TABLE messages DROP COLUMN parent_id;
