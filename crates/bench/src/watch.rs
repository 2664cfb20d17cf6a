//! A second client of a session: it holds `GET …/events` open (on another
//! replica than the sender's, when there are two) and reports every reply it
//! saw, with the time each delta arrived, so that the load generator can say
//! how much later a watcher sees a delta than the sender does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::StreamExt as _;
use reqwest::header::ACCEPT;
use tokio::sync::mpsc;

use crate::client::{Client, DeltaData, FinalMessage, SseParser};

/// One reply as a watcher saw it.
#[derive(Debug)]
pub struct Watched {
    pub reply_id: String,
    pub delta_times: Vec<Instant>,
    pub text: String,
    /// The final message's content and status.
    pub final_content: String,
    pub status: String,
}

/// What a watcher reports to its client.
#[derive(Debug)]
enum Seen {
    Reply(Watched),
    /// The server told the watcher it had missed events.
    Resync,
    /// The stream ended or broke; no more reports follow.
    Ended(String),
}

/// What waiting for one reply gave.
#[derive(Debug, Default)]
pub struct Awaited {
    pub reply: Option<Watched>,
    pub resyncs: u64,
    /// Why the reply never came, when it did not.
    pub problem: Option<String>,
}

/// A subscription to one session's events, read on a task of its own and
/// closed when dropped.
#[derive(Debug)]
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Watcher {
    /// Subscribes to `session` on `base_url` and returns once the server
    /// answered, so a message sent afterwards is seen from its first event.
    ///
    /// # Errors
    /// The subscription refused or not answered.
    pub async fn open(client: &Client, base_url: &str, session: &str) -> anyhow::Result<Self> {
        let response = client
            .http()
            .get(format!("{base_url}/api/v1/sessions/{session}/events"))
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .context("subscribing a watcher")?;
        if !response.status().is_success() {
            bail!("subscribing a watcher answered {}", response.status());
        }
        let (report, seen) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let ended = read(response, &report).await;
            let _ = report.send(Seen::Ended(match ended {
                Ok(()) => "the watcher's stream ended".to_owned(),
                Err(error) => format!("the watcher's stream broke: {error:#}"),
            }));
        });
        Ok(Self { task, seen })
    }

    /// Waits up to `patience` for the end of reply `reply_id`; other
    /// replies' reports (there are none in a closed loop) are skipped.
    pub async fn reply(&mut self, reply_id: &str, patience: Duration) -> Awaited {
        let deadline = tokio::time::Instant::now() + patience;
        let mut awaited = Awaited::default();
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(Seen::Reply(reply))) if reply.reply_id == reply_id => {
                    awaited.reply = Some(reply);
                    return awaited;
                }
                Ok(Some(Seen::Reply(_))) => {}
                Ok(Some(Seen::Resync)) => awaited.resyncs += 1,
                Ok(Some(Seen::Ended(why))) => {
                    awaited.problem = Some(why);
                    return awaited;
                }
                Ok(None) => {
                    awaited.problem = Some("the watcher stopped".to_owned());
                    return awaited;
                }
                Err(_) => {
                    awaited.problem = Some(format!(
                        "the watcher did not see reply {reply_id} end within {patience:?}"
                    ));
                    return awaited;
                }
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the event stream, reporting each reply when it ends.
async fn read(
    response: reqwest::Response,
    report: &mpsc::UnboundedSender<Seen>,
) -> anyhow::Result<()> {
    let mut running: HashMap<String, (Vec<Instant>, String)> = HashMap::new();
    let mut parser = SseParser::default();
    let mut body = response.bytes_stream();
    while let Some(bytes) = body.next().await {
        let bytes = bytes?;
        // Every event in this read arrived now, as for the sender.
        let now = Instant::now();
        parser.feed(&bytes);
        while let Some(event) = parser.next_event() {
            match event.name {
                "message.delta" => {
                    let data: DeltaData<'_> =
                        serde_json::from_str(event.data).context("a watched message.delta")?;
                    let (times, text) = running.entry(data.message_id.into_owned()).or_default();
                    times.push(now);
                    text.push_str(&data.delta);
                }
                "message.completed" | "message.failed" => {
                    let message: FinalMessage =
                        serde_json::from_str(event.data).context("a watched final message")?;
                    let (delta_times, text) = running.remove(&message.id).unwrap_or_default();
                    let _ = report.send(Seen::Reply(Watched {
                        reply_id: message.id,
                        delta_times,
                        text,
                        final_content: message.content,
                        status: message.status,
                    }));
                }
                "stream.resync" => {
                    let _ = report.send(Seen::Resync);
                }
                _ => {}
            }
        }
    }
    Ok(())
}
