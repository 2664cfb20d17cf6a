//! Upkeep of the sessions this process serves: their counters are kept
//! alive while they have subscribers here (as the in-process log keeps a
//! channel with subscribers), and each round also catches what a missed
//! notice or an outage hid: a session closed meanwhile, or a counter that
//! started afresh because Redis lost it (its subscribers are then told to
//! resync without waiting for the next event).

use std::sync::Arc;
use std::time::Duration;

use super::shared::Shared;
use crate::connection::Failure;
use crate::scripts::SCRIPTS;

/// Sessions per script call: the call stays short however many are served.
const CHUNK: usize = 128;

/// A round that failed is tried again after this, doubling while it fails.
const FIRST_RETRY: Duration = Duration::from_millis(100);

pub(crate) async fn run(shared: Arc<Shared>) {
    let every = shared.settings.upkeep_every();
    let mut wait = every;
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = shared.upkeep_now.notified() => {}
        }
        wait = match round(&shared).await {
            Ok(()) => every,
            // Right after an outage is when a round matters most: try
            // again soon rather than a whole interval later.
            Err(failure) => {
                tracing::debug!(?failure, "could not keep the watched sessions alive");
                if wait >= every {
                    FIRST_RETRY.min(every)
                } else {
                    (wait * 2).min(every)
                }
            }
        };
    }
}

async fn round(shared: &Shared) -> Result<(), Failure> {
    let watches = shared.hub.watched();
    let keys = shared.redis.keys();
    for chunk in watches.chunks(CHUNK) {
        let mut invocation = shared.log_script(&SCRIPTS.watched);
        for watch in chunk {
            invocation
                .key(keys.meta(watch.session))
                .key(keys.log(watch.session));
        }
        let numbers: Vec<u64> = shared.redis.run("keep sessions alive", &invocation).await?;
        for (watch, pair) in chunk.iter().zip(numbers.chunks(2)) {
            match *pair {
                [0, last] => shared.hub.close(watch.session, last),
                [first, _] if first > watch.read_upto() + 1 => {
                    shared.hub.restart(watch.session, first);
                }
                _ => {}
            }
        }
    }
    Ok(())
}
