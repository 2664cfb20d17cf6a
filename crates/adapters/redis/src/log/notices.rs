//! The notices replicas send each other through Redis's pub/sub, on a
//! connection of their own: a cancel (the lease token of the claim to
//! stop) and a close (a session and its last event id). A notice missed
//! while the connection was down is caught up by other means: a cancel by
//! the claim's next renewal (the flag stays on the slot), a close by the
//! next upkeep round (the flag stays on the counter).

use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::SessionId;
use futures::StreamExt;

use super::shared::Shared;

/// How often the connection is checked when no notice comes: a connection
/// that went silent is noticed within this plus the command timeout.
const PING_EVERY: Duration = Duration::from_secs(2);

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

pub(crate) async fn run(shared: Arc<Shared>) {
    let cancels = shared.redis.keys().cancel_channel();
    let closes = shared.redis.keys().closed_channel();
    let mut retry = FIRST_RETRY;
    let mut connected_before = false;
    loop {
        let listening = tokio::select! {
            () = shared.stop.cancelled() => return,
            listening = listen(&shared, &cancels, &closes, connected_before) => listening,
        };
        match listening {
            Listening::Connected => {
                connected_before = true;
                retry = FIRST_RETRY;
            }
            Listening::Failed => {}
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(LONGEST_RETRY);
    }
}

enum Listening {
    /// It was subscribed, then the connection went.
    Connected,
    /// It could not subscribe.
    Failed,
}

async fn listen(shared: &Shared, cancels: &str, closes: &str, reconnecting: bool) -> Listening {
    let mut pubsub = match shared.redis.pubsub().await {
        Ok(pubsub) => pubsub,
        Err(failure) => {
            tracing::debug!(?failure, "cannot listen for cancels and closes yet");
            return Listening::Failed;
        }
    };
    let timeout = shared.redis.command_timeout();
    match tokio::time::timeout(timeout, pubsub.subscribe(&[cancels, closes])).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "cannot subscribe to cancels and closes yet");
            return Listening::Failed;
        }
        Err(_) => return Listening::Failed,
    }
    if reconnecting {
        tracing::info!("listening for cancels and closes again");
        // Closes sent meanwhile were missed: the upkeep round finds them.
        shared.upkeep_now.notify_one();
    }
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    tracing::warn!("the connection for cancels and closes went; reconnecting");
                    return Listening::Connected;
                };
                let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
                    continue;
                };
                if message.get_channel_name() == cancels {
                    shared.claims.cancel(payload);
                } else if let Some((session, last)) = closed(payload) {
                    shared.hub.close(session, last);
                }
            }
            _ = ping.tick() => {
                if !matches!(tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                    tracing::warn!("the connection for cancels and closes stopped answering; reconnecting");
                    return Listening::Connected;
                }
            }
        }
    }
}

/// A close notice: `<session id> <last event id>`.
fn closed(payload: &str) -> Option<(SessionId, u64)> {
    let (session, last) = payload.split_once(' ')?;
    Some((SessionId::parse(session).ok()?, last.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_notices_name_a_session_and_its_last_id() {
        let session = SessionId::new();
        assert_eq!(closed(&format!("{session} 42")), Some((session, 42)));
        assert_eq!(closed("nonsense"), None);
        assert_eq!(closed(&format!("{session} x")), None);
    }
}
