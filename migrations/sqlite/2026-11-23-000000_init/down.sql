-- Dropping a table drops its indexes too. Messages first: they reference sessions.
DROP TABLE messages;
DROP TABLE sessions;
