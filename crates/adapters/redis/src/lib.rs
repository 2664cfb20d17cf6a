//! colloquy's event log and limiter in Redis, shared by every replica:
//! [`RedisEventLog`] implements `EventLog`, [`RedisLimiter`] implements
//! `Limiter`, both on one [`Redis`] handle. They behave as the in-process
//! adapters do (both pass the same conformance suite); what changes is
//! that every replica sees the same events, slots, cancels and counts.
//!
//! # Events
//!
//! Each session has a stream (`…s:{id}:log`) and a counter (`…:meta`).
//! Event ids are the contract's decimal integers, and each stream entry's
//! id is `<event id>-0`. One Lua script reads the counter, appends the
//! event and trims the stream, so two replicas publishing at once can
//! never hand out one id twice; a publish is one round trip (`EVALSHA`).
//! A counter starts at Redis's clock in microseconds (and above any id its
//! stream still holds), so ids keep increasing across a restart of Redis
//! (which keeps nothing on disk here) and an id from before one is below
//! the new counter's first: the subscriber that resumes from it gets
//! `stream.resync` (`not_kept`), as it would after a restart of an
//! in-process log. Ids within a counter are consecutive, so a gap is
//! always noticed.
//!
//! The stream keeps what the in-process log keeps, with the same rules:
//! the oldest events go once they are past the retention time or the
//! session holds more than its count or byte limit, the newest always
//! stays. The script trims exactly (`XTRIM MINID` to the first event that
//! stays) because the byte limit and the retention time need the cut
//! computed anyway; the stream key also expires a retention time after its
//! newest event, so an idle session costs nothing for long.
//!
//! Each process reads each session's stream once: a few readers, each on a
//! connection of its own, block in one `XREAD` over the streams of every
//! session they serve (re-issued when that set grows: a new session rings
//! the reader's doorbell stream, which the read includes). What they read
//! goes to the session's watch, which buffers the latest events, and every
//! local subscriber reads from there with its own cursor; one that falls
//! further behind than the buffer reads from Redis itself, a batch at a
//! time, and is told to resync when what it needs is gone. A slow
//! subscriber delays nobody.
//!
//! # Reply slots, cancels, closes
//!
//! A claim is a lease (`…:slot`): taken only when free, with a random
//! token, renewed every third of `COLLOQUY_LEASE_SECS`; finishing publishes
//! the last event and frees the slot in one script; releasing or dropping
//! a claim frees it (only if the token is still ours). A claim that finds
//! its lease lost (expired or taken) treats itself as cancelled. A cancel
//! flags the slot and is published on a channel every replica listens to,
//! so the claim hears it at once (or at its next renewal if the notice was
//! missed). Closing a session marks its counter closed and publishes that:
//! every replica ends the session's subscribers after what came before.
//!
//! Every running reply is also in a sorted set by lease deadline, for the
//! sweeper, which `ExpiredLeases` (in the ports) describes. A reply the
//! store holds `streaming` with no lease at all (Redis lost its state while
//! the reply's replica was dead) can be adopted into that set.
//!
//! # When Redis goes away
//!
//! Every command has a timeout; an outage fails calls at once for a short
//! pause that grows while it lasts, then they try again (the connections
//! reconnect by themselves). Publishing fails as unavailable (the reply
//! goes on and is stored), a claim that cannot renew its lease keeps its
//! reply running (only Redis answering that the lease is gone stops it),
//! subscribers wait, and when Redis is back any subscriber whose events
//! were lost meanwhile gets `stream.resync`.
//!
//! All keys of a session share one hash tag, but the scripts that touch
//! the set of running replies as well need one Redis server (with replicas
//! and Sentinel if wanted), not a cluster.

mod codec;
mod config;
mod connection;
mod keys;
mod limiter;
mod log;
mod releases;
mod scripts;

pub use colloquy_inprocess::LogLimits;
pub use config::RedisConfig;
pub use connection::Redis;
pub use limiter::RedisLimiter;
pub use log::RedisEventLog;
