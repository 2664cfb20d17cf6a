//! A reader: one dedicated connection, one blocking `XREAD` over the streams
//! of every session it serves (plus its doorbell, which wakes it when that
//! set grows), handing what it reads to the sessions' watches. Each event
//! is read once per process, however many subscribers it has here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::Value;

use super::hub::{Buffered, ReaderSessions, Watch};
use super::shared::{entry_event, Shared};

/// How long one read blocks when nothing comes: also how quickly a
/// connection that went silent is noticed (plus the command timeout).
const BLOCK: Duration = Duration::from_secs(2);

/// Most entries read per stream and round trip.
const COUNT: usize = 256;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

/// Reads for `sessions` until the log stops.
pub(crate) async fn run(shared: Arc<Shared>, sessions: Arc<ReaderSessions>) {
    let doorbell = shared.redis.keys().doorbell(&sessions.name);
    let mut retry = FIRST_RETRY;
    let mut was_down = false;
    loop {
        let connected = tokio::select! {
            () = shared.stop.cancelled() => return,
            connected = shared.redis.dedicated(BLOCK) => connected,
        };
        let mut connection = match connected {
            Ok(connection) => connection,
            Err(failure) => {
                if !was_down {
                    tracing::warn!(?failure, "an event reader cannot reach Redis; retrying");
                }
                was_down = true;
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(LONGEST_RETRY);
                continue;
            }
        };
        if std::mem::take(&mut was_down) {
            tracing::info!("an event reader reaches Redis again");
            // Events may have been lost with Redis meanwhile: check every
            // watched session's counter now, not at the next round.
            shared.upkeep_now.notify_one();
        }
        retry = FIRST_RETRY;
        let mut reading = Reading::new(doorbell.clone());
        loop {
            let read = tokio::select! {
                () = shared.stop.cancelled() => return,
                read = reading.next(&shared, &sessions, &mut connection) => read,
            };
            if let Err(error) = read {
                tracing::warn!(error = %error, "an event reader lost its connection to Redis; reconnecting");
                was_down = true;
                break;
            }
        }
    }
}

/// What a reader reads: the streams of its sessions, as of a generation of
/// its set, and its doorbell.
struct Reading {
    doorbell: String,
    /// The doorbell's last entry seen.
    doorbell_seen: String,
    generation: Option<u64>,
    streams: Vec<(String, Arc<Watch>)>,
    by_key: HashMap<String, Arc<Watch>>,
}

impl Reading {
    fn new(doorbell: String) -> Self {
        Self {
            doorbell,
            doorbell_seen: "0".to_owned(),
            generation: None,
            streams: Vec::new(),
            by_key: HashMap::new(),
        }
    }

    /// One blocking read, its entries handed to their watches.
    async fn next(
        &mut self,
        shared: &Shared,
        sessions: &ReaderSessions,
        connection: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        if self.generation != Some(sessions.generation()) {
            let (generation, watches) = sessions.snapshot();
            self.generation = Some(generation);
            self.streams = watches
                .into_iter()
                .map(|watch| (shared.redis.keys().log(watch.session), watch))
                .collect();
            self.by_key = self
                .streams
                .iter()
                .map(|(key, watch)| (key.clone(), Arc::clone(watch)))
                .collect();
        }
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS");
        for (key, _) in &self.streams {
            command.arg(key);
        }
        command.arg(&self.doorbell);
        for (_, watch) in &self.streams {
            command.arg(format!("{}-0", watch.read_upto()));
        }
        command.arg(&self.doorbell_seen);
        let reply: Option<StreamReadReply> = command.query_async(connection).await?;
        for stream in reply.map(|reply| reply.keys).unwrap_or_default() {
            if stream.key == self.doorbell {
                if let Some(last) = stream.ids.last() {
                    self.doorbell_seen.clone_from(&last.id);
                }
                continue;
            }
            let Some(watch) = self.by_key.get(&stream.key) else {
                continue;
            };
            let events: Vec<Buffered> = stream
                .ids
                .iter()
                .filter_map(|entry| {
                    let id = event_id(&entry.id)?;
                    let Some(Value::BulkString(data)) = entry.map.get("e") else {
                        tracing::error!(session_id = %watch.session, entry = entry.id, "a stream entry without an event");
                        return None;
                    };
                    Some(entry_event(watch.session, id, data))
                })
                .collect();
            watch.deliver(events);
        }
        Ok(())
    }
}

/// The event id of a stream entry id (`<event id>-0`).
fn event_id(entry: &str) -> Option<u64> {
    entry.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::event_id;

    #[test]
    fn entry_ids_carry_event_ids() {
        assert_eq!(event_id("1700000000000001-0"), Some(1_700_000_000_000_001));
        assert_eq!(event_id("garbage"), None);
    }
}
