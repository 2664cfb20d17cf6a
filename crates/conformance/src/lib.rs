//! Behavioural tests that every adapter of a port must pass, written once
//! and run by each adapter's own test suite, so that the adapters cannot
//! drift apart: what the in-process event log does, the Redis one does too.
//!
//! An adapter's tests implement [`event_log::Harness`] (how to make a log,
//! how to look inside it) and expand [`event_log_conformance!`] with it,
//! which writes one `#[tokio::test]` per behaviour. The crate is a
//! dev-dependency only; nothing in a release build links it.

pub mod event_log;
