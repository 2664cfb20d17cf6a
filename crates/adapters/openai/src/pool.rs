//! One connection pool per thread.
//!
//! hyper runs each upstream connection as a task on the runtime that opened
//! it, and hands every piece of a response body to the request's own task
//! through a channel. actix-web runs one single-threaded runtime per worker,
//! and a reply runs on the worker that took its request. With a single pool
//! for the process, a reply that picks up a connection another worker opened
//! has each of its chunks handed across threads — a futex wake-up and a task
//! switch per chunk, for half the replies on two workers. A pool per thread
//! keeps a reply and its connection on the same thread.

use std::time::Duration;

use thread_local::ThreadLocal;

/// The pools, one made lazily for each thread that sends a request.
pub(crate) struct ThreadPools {
    per_thread: ThreadLocal<reqwest::Client>,
    connect_timeout: Duration,
    /// Built first, to report a bad setup at start-up; also the pool of a
    /// thread whose own could not be built (in practice never: building
    /// fails only when the TLS backend cannot start, and it started once).
    first: reqwest::Client,
}

impl ThreadPools {
    pub(crate) fn new(connect_timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            per_thread: ThreadLocal::new(),
            connect_timeout,
            first: build(connect_timeout)?,
        })
    }

    /// The calling thread's pool.
    pub(crate) fn get(&self) -> &reqwest::Client {
        self.per_thread.get_or(|| {
            build(self.connect_timeout).unwrap_or_else(|error| {
                tracing::warn!(%error, "a thread's upstream connection pool could not be built; sharing the first one");
                self.first.clone()
            })
        })
    }
}

/// One pool's client: the only place its settings are made.
fn build(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        // Following a redirect would turn the POST into a GET and hide a
        // misconfigured base URL; an unfollowed one is reported instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("colloquy/", env!("CARGO_PKG_VERSION")))
        .build()
}
