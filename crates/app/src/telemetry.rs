//! The reply driver's counters, through the `metrics` facade: without an
//! installed recorder (the app's tests) they cost nothing; the HTTP shell
//! installs one and serves them at `/metrics`.

use colloquy_domain::Message;
use colloquy_ports::LlmError;
use metrics::counter;

use crate::upstream::Attempt;

/// One request to the upstream ended: `ok`, `stopped` (cancel or shutdown),
/// or the error code it failed with.
pub(crate) fn attempt_ended(attempt: &Attempt) {
    let outcome = match attempt {
        Attempt::Finished(..) => "ok",
        Attempt::Stopped(_) => "stopped",
        Attempt::Failed(error) => error.code().as_str(),
    };
    counter!("colloquy_upstream_attempts_total", "outcome" => outcome).increment(1);
}

/// A failed request is about to be made again.
pub(crate) fn retrying(error: &LlmError) {
    counter!("colloquy_upstream_retries_total", "reason" => error.code().as_str()).increment(1);
}

/// A reply reached its final status; its tokens are counted once, here.
pub(crate) fn reply_ended(message: &Message) {
    counter!("colloquy_replies_total", "status" => message.status.as_str()).increment(1);
    if let Some(usage) = message.usage {
        counter!("colloquy_tokens_total", "direction" => "in").increment(usage.prompt_tokens);
        counter!("colloquy_tokens_total", "direction" => "out").increment(usage.completion_tokens);
    }
}
