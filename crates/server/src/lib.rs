//! The `colloquy` binary's library half: configuration, wiring, and the
//! commands. `main` only parses arguments and calls in here, so integration
//! tests start the very same server on port 0.

pub mod application;
pub mod ask;
pub mod config;
pub mod keys;
pub mod logging;
pub mod token;

pub use application::Application;
pub use config::Config;
