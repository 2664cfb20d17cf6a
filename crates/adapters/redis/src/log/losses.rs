//! Marks where events this process could not publish would have been: a
//! task that, once Redis answers again, appends the mark of lost events to
//! each session that lost some (see `Losses` in `shared.rs`), unless the
//! session's next event carried it first.

use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::SessionId;

use super::shared::Shared;
use crate::codec;
use crate::connection::Failure;
use crate::scripts::SCRIPTS;

/// How often the marks are tried while Redis does not answer: soon after
/// it is back, the watchers of those sessions hear of their loss.
const RETRY: Duration = Duration::from_millis(250);

pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.losses.recorded.notified() => {}
        }
        while !shared.losses.is_empty() {
            tokio::select! {
                () = shared.stop.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
            let mut sessions = shared.losses.take_all().into_iter();
            while let Some(session) = sessions.next() {
                if let Err(failure) = mark(&shared, session).await {
                    tracing::debug!(?failure, "cannot mark lost events yet");
                    // Redis is still away: the rest wait for the next try.
                    shared.losses.record(session);
                    sessions.for_each(|session| shared.losses.record(session));
                    break;
                }
            }
        }
    }
}

async fn mark(shared: &Shared, session: SessionId) -> Result<(), Failure> {
    let keys = shared.redis.keys();
    let mark = codec::lost_mark();
    let mut invocation = shared.log_script(&SCRIPTS.publish);
    invocation
        .key(keys.meta(session))
        .key(keys.log(session))
        .arg(&mark)
        .arg(mark.len())
        .arg("");
    let id: u64 = shared.redis.run("mark lost events", &invocation).await?;
    tracing::info!(session_id = %session, event_id = id, "events that could not be published are marked: the session's subscribers resync");
    Ok(())
}
