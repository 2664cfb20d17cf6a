//! The real server, on port 0, with its own SQLite file (or, in
//! `postgres.rs` and `replicas.rs`, its own PostgreSQL database, and in
//! `replicas.rs` several replicas sharing it and a Redis) and a fake
//! upstream, driven over HTTP as a client would.

mod binary;
mod shared_redis;
mod support;

mod archive;
mod ask;
mod assistants;
mod auth;
mod branches;
mod compat;
mod context;
mod crash;
mod edges;
mod errors;
mod faults;
mod flow;
mod keys;
mod limits;
mod load;
mod lossless;
mod openai_sdk;
mod postgres;
mod replicas;
mod secrets;
mod streaming;
mod summary;
mod surface;
mod titles;
mod token;
mod tools;
mod websocket;
