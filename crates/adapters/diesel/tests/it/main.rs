//! Integration tests of the repositories: every contract test against a real
//! SQLite file and a real PostgreSQL database (one of its own per test), and
//! what only one of them has.
//!
//! The PostgreSQL tests need a server: 127.0.0.1:5432 with trust
//! authentication by default, or the one `COLLOQUY_TEST_POSTGRES_URL` names.
//! Without one they fail, saying so.

mod assistants;
mod branches_upgrade;
mod chains;
mod concurrency;
mod connection;
mod import;
mod keys;
mod messages;
mod owners;
mod postgres;
mod scale;
mod search;
mod sessions;
mod speakers;
mod storage;
mod support;
mod tree;
mod upgrade;
mod usage;
