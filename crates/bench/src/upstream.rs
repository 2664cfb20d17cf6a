//! The fake OpenAI upstream both targets stream from.
//!
//! It is the test fake (`colloquy-fake-upstream`): a hand-written HTTP/1.1
//! server that renders a scripted reply from borrowed data and writes each
//! paced chunk with one syscall, so it is cheap enough to be the limit rather
//! than a bottleneck. It runs on a thread and a single-threaded runtime of its
//! own, so that the load generator's tasks never delay its chunks (and the
//! other way round) more than the shared CPU forces.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use tokio::sync::oneshot;

/// The shape of every reply: `chunks` content chunks, the first after
/// `first_token`, the others `pace` apart.
#[derive(Debug, Clone)]
pub struct ReplyShape {
    pub text: String,
    pub chunks: usize,
    pub pace: Duration,
    pub first_token: Duration,
}

impl ReplyShape {
    /// A reply of `chunks` pieces of about six characters each. It holds a
    /// quote, a backslash, a newline and multi-byte characters, so that a
    /// relay that mangles JSON escaping or cuts UTF-8 is caught by the text
    /// comparison.
    pub fn new(chunks: usize, pace: Duration, first_token: Duration) -> Self {
        const WORDS: [&str; 8] = [
            "naïve ",
            "\"quoted\" ",
            "back\\slash ",
            "line\n",
            "café ",
            "→arrow ",
            "plain ",
            "日本語 ",
        ];
        let mut text = String::new();
        for word in WORDS.iter().cycle() {
            if text.chars().count() >= chunks.max(1) * 6 {
                break;
            }
            text.push_str(word);
        }
        Self {
            text,
            chunks,
            pace,
            first_token,
        }
    }

    /// How long the upstream takes to stream one reply.
    pub fn duration(&self) -> Duration {
        self.first_token
            + self.pace * u32::try_from(self.chunks.saturating_sub(1)).unwrap_or(u32::MAX)
    }

    fn behaviour(&self) -> Behaviour {
        Behaviour::text(self.text.clone())
            .split(self.chunks)
            .pace(self.pace)
            .first_chunk_delay(self.first_token)
            .into()
    }
}

/// A running fake upstream on its own thread. Dropping it stops it.
#[derive(Debug)]
pub struct Upstream {
    fake: Option<FakeUpstream>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    pub fn start(shape: &ReplyShape) -> anyhow::Result<Self> {
        let (started, fake) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-upstream".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(anyhow::Error::new(error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match FakeUpstream::try_start().await {
                        Ok(fake) => {
                            let _ = started.send(Ok(fake));
                            // Serve until told to stop; the connection tasks
                            // live on this runtime.
                            let _ = stopped.await;
                        }
                        Err(error) => {
                            let _ = started.send(Err(anyhow::Error::new(error)));
                        }
                    }
                });
            })
            .context("starting the fake upstream's thread")?;
        let fake = fake.recv().context("the fake upstream's thread died")??;
        // A benchmark sends hundreds of thousands of requests: keep counting,
        // stop recording, so the fake's memory stays flat.
        fake.set_recording(false);
        fake.set_default(shape.behaviour());
        Ok(Self {
            fake: Some(fake),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The OpenAI base URL: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        self.fake
            .as_ref()
            .map(FakeUpstream::base_url)
            .unwrap_or_default()
    }

    /// How many requests the fake has received.
    pub fn request_count(&self) -> u64 {
        self.fake.as_ref().map_or(0, FakeUpstream::request_count)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Stop accepting and drop every connection first, then end the runtime.
        drop(self.fake.take());
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
