//! Integration tests of `SqliteRepository` against real SQLite files.

mod concurrency;
mod connection;
mod keys;
mod messages;
mod owners;
mod scale;
mod sessions;
mod storage;
mod support;
mod usage;
