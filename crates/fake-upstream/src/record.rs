//! What the fake remembers of the requests it received.

use std::time::Instant;

use serde_json::Value;

/// One request, as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The order of arrival, from 0, over the fake's whole life (clearing the
    /// record does not reset it).
    pub seq: u64,
    /// Which TCP connection carried it, numbered from 0 in order of accept:
    /// requests with the same number reused a pooled connection.
    pub connection: u64,
    pub method: String,
    /// The request target, query string included.
    pub path: String,
    /// Header names in lower case, values as sent, in order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Value::Null` when it was not JSON.
    pub body: Value,
    /// When the whole request had been read.
    pub received_at: Instant,
    pub outcome: Outcome,
}

impl RecordedRequest {
    /// The first value of a header, its name matched case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's `messages` array (empty when absent).
    #[must_use]
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }
}

/// How the fake's side of a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still being answered (streaming, waiting out a delay, or stalling).
    InProgress,
    /// The fake played its whole script, faults included.
    Served,
    /// The client went away first: a write failed, or it closed the
    /// connection of a stalled reply.
    ClientGone,
}
