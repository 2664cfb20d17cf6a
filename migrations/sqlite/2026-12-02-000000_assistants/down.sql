-- Every assistant is forgotten, and so is who wrote each message: the
-- history reads as if the session's default voice had written it all.
ALTER TABLE sessions DROP COLUMN assistant_id;
ALTER TABLE messages DROP COLUMN assistant_name;
ALTER TABLE messages DROP COLUMN assistant_id;
DROP TABLE assistants;
