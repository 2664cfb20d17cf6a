DROP TABLE daily_usage;
DROP TABLE api_keys;
DROP TABLE messages;
DROP TABLE sessions;
