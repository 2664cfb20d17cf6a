//! The Redis adapters against the real Redis at 127.0.0.1:6379 (or
//! `COLLOQUY_TEST_REDIS_URL`). Each test works under a key prefix of its
//! own and deletes its keys when it ends; several "replicas" are several
//! adapters on one Redis, and a replica that is cut off talks to Redis
//! through a proxy the test controls.

mod commands;
mod conformance;
mod leases;
mod limiter;
mod outage;
mod proxy;
mod replicas;
mod support;
