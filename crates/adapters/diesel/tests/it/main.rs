//! Integration tests of `SqliteRepository` against real SQLite files.

mod concurrency;
mod connection;
mod messages;
mod scale;
mod sessions;
mod storage;
mod support;
