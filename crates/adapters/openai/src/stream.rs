//! The [`ChatStream`](colloquy_ports::ChatStream) over an open event source.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use colloquy_ports::{ChatChunk, LlmError};
use futures::{Stream, StreamExt as _};
use reqwest_eventsource::{Error as SourceError, Event, EventSource};

use crate::decode::{Decoder, Step};
use crate::errors;

/// Yields the chunks of one open response, then exactly one
/// [`ChatChunk::Finished`] or one error, then nothing.
///
/// The event source is dropped as soon as the stream is over, and with it the
/// HTTP response: an error or a consumer that drops the stream aborts the
/// request rather than reading the rest of it.
pub(crate) struct ChunkStream {
    /// `None` once the stream is over.
    source: Option<EventSource>,
    decoder: Decoder,
    /// Chunks of payloads already read, not yet yielded: one payload can
    /// carry several (text and tool-call fragments).
    queued: VecDeque<ChatChunk>,
}

impl std::fmt::Debug for ChunkStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStream")
            .field("open", &self.source.is_some())
            .field("decoder", &self.decoder)
            .field("queued", &self.queued.len())
            .finish_non_exhaustive()
    }
}

impl ChunkStream {
    pub(crate) fn new(source: EventSource) -> Self {
        Self {
            source: Some(source),
            decoder: Decoder::default(),
            queued: VecDeque::new(),
        }
    }

    /// Ends the stream with this last item.
    fn finish(
        &mut self,
        last: Result<ChatChunk, LlmError>,
    ) -> Poll<Option<Result<ChatChunk, LlmError>>> {
        self.source = None;
        Poll::Ready(Some(last))
    }
}

impl Stream for ChunkStream {
    type Item = Result<ChatChunk, LlmError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.queued.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            let Some(source) = this.source.as_mut() else {
                return Poll::Ready(None);
            };
            let error = match ready!(source.poll_next_unpin(cx)) {
                Some(Ok(Event::Open)) => continue,
                Some(Ok(Event::Message(message))) => {
                    if message.data.is_empty() {
                        continue;
                    }
                    match this.decoder.feed(&message.data, &mut this.queued) {
                        Ok(Step::More) => continue,
                        // `[DONE]` carries no chunk: nothing is queued.
                        Ok(Step::Done(completion)) => {
                            return this.finish(Ok(ChatChunk::Finished(completion)))
                        }
                        Err(error) => error,
                    }
                }
                // With the retry policy at `Never`, the source ends after
                // reporting the end of the body, so `None` means the same.
                Some(Err(SourceError::StreamEnded)) | None => match this.decoder.end() {
                    Ok(completion) => return this.finish(Ok(ChatChunk::Finished(completion))),
                    Err(error) => error,
                },
                Some(Err(error)) => errors::mid_stream(&error),
            };
            tracing::debug!(%error, "the upstream stream failed");
            return this.finish(Err(error));
        }
    }
}
