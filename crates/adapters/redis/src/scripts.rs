//! The Lua scripts: everything that must happen at once happens in one of
//! them, so two replicas can never interleave halfway (a counter bumped
//! without its event appended, a slot freed without its last event).
//!
//! Each script is its own file under `lua/`, after the shared pieces it
//! needs (`base.lua`: the clock and integers; `log.lua`: a session's
//! counter, trimming and appending). `redis::Script` sends `EVALSHA` and
//! loads the script only when Redis does not know it yet (after a restart),
//! so a call is one round trip.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($($file:literal),+) => {
        Script::new(concat!($(include_str!(concat!("lua/", $file))),+))
    };
}

pub(crate) struct Scripts {
    pub(crate) publish: Script,
    pub(crate) state: Script,
    pub(crate) read: Script,
    pub(crate) claim: Script,
    pub(crate) finish: Script,
    pub(crate) release: Script,
    pub(crate) renew: Script,
    pub(crate) cancel: Script,
    pub(crate) close: Script,
    pub(crate) watched: Script,
    pub(crate) expired: Script,
    pub(crate) sweep_claim: Script,
    pub(crate) sweep_adopt: Script,
    pub(crate) sweep_finish: Script,
    pub(crate) rate: Script,
    pub(crate) held_acquire: Script,
    pub(crate) held_renew: Script,
}

pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    publish: script!("base.lua", "log.lua", "publish.lua"),
    state: script!("base.lua", "log.lua", "state.lua"),
    read: script!("base.lua", "log.lua", "read.lua"),
    claim: script!("base.lua", "log.lua", "claim.lua"),
    finish: script!("base.lua", "log.lua", "finish.lua"),
    release: script!("release.lua"),
    renew: script!("base.lua", "renew.lua"),
    cancel: script!("cancel.lua"),
    close: script!("base.lua", "close.lua"),
    watched: script!("base.lua", "log.lua", "watched.lua"),
    expired: script!("base.lua", "expired.lua"),
    sweep_claim: script!("base.lua", "sweep_claim.lua"),
    sweep_adopt: script!("base.lua", "sweep_adopt.lua"),
    sweep_finish: script!("base.lua", "log.lua", "sweep_finish.lua"),
    rate: script!("base.lua", "rate.lua"),
    held_acquire: script!("base.lua", "held_acquire.lua"),
    held_renew: script!("base.lua", "held_renew.lua"),
});
