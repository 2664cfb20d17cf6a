//! Just enough HTTP/1.1 to be an OpenAI server: requests with a
//! `Content-Length` body, keep-alive, and responses written byte for byte so
//! that faults (a body cut short, a stall) are exactly what the script says.

use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A request head larger than this is refused: nothing legitimate sends one.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted; OpenAI's own limit is in the same range.
const MAX_BODY: usize = 32 * 1024 * 1024;
const MAX_HEADERS: usize = 64;

/// One request read off a connection.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) received_at: Instant,
    /// The client asked to close the connection after this exchange.
    pub(crate) close: bool,
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection broke or closed mid-request: nobody to answer.
    Broken,
    /// Not HTTP the fake understands: answer `400` and close.
    Malformed(&'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        Self::Broken
    }
}

/// Reads the next request, or `None` when the client closed the connection
/// between requests.
pub(crate) async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
) -> Result<Option<Request>, ReadError> {
    loop {
        if !buf.is_empty() {
            if let Some(head) = parse_head(buf)? {
                let total = head.len + head.content_length;
                while buf.len() < total {
                    buf.reserve(total - buf.len());
                    if stream.read_buf(buf).await? == 0 {
                        return Err(ReadError::Broken);
                    }
                }
                let _ = buf.split_to(head.len);
                let body = buf.split_to(head.content_length).freeze();
                return Ok(Some(Request {
                    method: head.method,
                    path: head.path,
                    headers: head.headers,
                    body,
                    received_at: Instant::now(),
                    close: head.close,
                }));
            }
            if buf.len() > MAX_HEAD {
                return Err(ReadError::Malformed("request head too large"));
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Broken)
            };
        }
    }
}

struct Head {
    len: usize,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    content_length: usize,
    close: bool,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, ReadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ReadError::Malformed("unparsable request head")),
    };
    let mut content_length = 0;
    let mut close = request.version == Some(0);
    let mut headers = Vec::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = header.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(header.value).into_owned();
        match name.as_str() {
            "content-length" => {
                content_length = value
                    .trim()
                    .parse()
                    .map_err(|_| ReadError::Malformed("bad content-length"))?;
            }
            // reqwest sends a Content-Length for JSON bodies; supporting
            // chunked uploads would buy nothing here.
            "transfer-encoding" => {
                return Err(ReadError::Malformed(
                    "chunked request bodies are not supported",
                ))
            }
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
        headers.push((name, value));
    }
    if content_length > MAX_BODY {
        return Err(ReadError::Malformed("request body too large"));
    }
    Ok(Some(Head {
        len,
        method: request.method.unwrap_or_default().to_owned(),
        path: request.path.unwrap_or_default().to_owned(),
        headers,
        content_length,
        close,
    }))
}

/// Appends a status line and headers, ending the head.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    extra: &[(String, String)],
) {
    // Writing to a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a complete response with a `Content-Length` body.
pub(crate) fn write_full(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra: &[(String, String)],
    body: &[u8],
) {
    let length = body.len().to_string();
    write_head(
        out,
        status,
        &[("content-type", content_type), ("content-length", &length)],
        extra,
    );
    out.extend_from_slice(body);
}

/// A response being written: `out` holds bytes not yet sent, `events` the SSE
/// events not yet framed as an HTTP chunk. Both buffers belong to the
/// connection and are reused from one request to the next.
pub(crate) struct Writer<'a> {
    pub(crate) stream: &'a mut TcpStream,
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) events: &'a mut Vec<u8>,
}

impl Writer<'_> {
    /// Queues one SSE event whose data is this value as JSON.
    pub(crate) fn event<T: serde::Serialize>(&mut self, data: &T) {
        self.events.extend_from_slice(b"data: ");
        // Our payloads are plain structs of strings and numbers: serializing
        // them into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.events, data);
        self.events.extend_from_slice(b"\n\n");
    }

    /// Queues one SSE event with raw data.
    pub(crate) fn raw_event(&mut self, data: &[u8]) {
        self.events.extend_from_slice(b"data: ");
        self.events.extend_from_slice(data);
        self.events.extend_from_slice(b"\n\n");
    }

    /// Frames the queued events as one HTTP chunk.
    fn seal(&mut self) {
        if !self.events.is_empty() {
            let _ = write!(self.out, "{:x}\r\n", self.events.len());
            self.out.extend_from_slice(self.events);
            self.out.extend_from_slice(b"\r\n");
            self.events.clear();
        }
    }

    /// Queues the end of the chunked body.
    pub(crate) fn end_body(&mut self) {
        self.seal();
        self.out.extend_from_slice(b"0\r\n\r\n");
    }

    /// Sends everything queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.seal();
        if !self.out.is_empty() {
            self.stream.write_all(self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Sends what is queued and waits; does nothing at all for a zero delay,
    /// so an unpaced reply leaves in one write.
    pub(crate) async fn pause(&mut self, delay: Duration) -> io::Result<()> {
        if !delay.is_zero() {
            self.flush().await?;
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

/// Waits until the client closes the connection (or it breaks), discarding
/// anything it sends: how a stalled reply keeps the connection open without
/// outliving its client.
pub(crate) async fn wait_for_close(stream: &mut TcpStream) {
    let mut sink = [0_u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

const fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        // Clients ignore the reason phrase; it only has to be present.
        _ => "Whatever",
    }
}
